"""
The spend guard: a cap on the images of one task, and an image budget per account over a time window.

**The cap** (:func:`check_max_images`) is a pure check of a rendered count against an operator's
``max_images``.  Over the cap, the task fails without retries: the same input asks for the same count.

**The budget** is ``[tencentcloud_mps] image_budget`` in the rate syntax of the `limits
<https://limits.readthedocs.io>`__ library (``2000 per day``, ``500 per 12 hours``), which a
connection may override with its ``image_budget`` extra (:func:`image_budget`).  A create reserves
its images before it is sent (:func:`reserve_images`), all of them at once, from a **moving window**
counted per account in the storage ``[tencentcloud_mps] quota_storage_uri`` names (the deployment's
Redis): the storage checks and records a reservation in one atomic step, so processes reserving at
the same time can never overspend the budget, not even by one image.  A reservation that does not
fit records nothing and raises :class:`MpsBudgetExceededError`, which Airflow's retries may repeat
once the window has moved on.  A reservation is never given back: a task that ends in ``FAIL``
costs nothing at MPS but keeps its images counted, so the budget is an upper bound of the spend.

The count of one account is kept under the account's key and the window's length, not its size: a
budget raised from ``2000 per day`` to ``3000 per day`` keeps the images already counted, while a
new window length (``per hour``) starts a count of its own.  Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import datetime
import logging
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from airflow_provider_mps import CONFIG_SECTION
from airflow_provider_mps.core.fields import check_count
from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsNetworkError
from airflow_provider_mps.utils.shared_quota import (
    NAMESPACE,
    QUOTA_STORAGE_URI_OPTION,
    _limits,
    _storage,
    redact_storage_uri,
)

log = logging.getLogger(__name__)

#: The option, and the connection extra overriding it, that set the image budget.
IMAGE_BUDGET_OPTION = "image_budget"
#: The syntax of a budget, as the error of a malformed one shows it.
BUDGET_SYNTAX = (
    "'<images> per [<n>] <second|minute|hour|day|month|year>' in the limits library's rate syntax, "
    "such as 2000 per day or 500 per 12 hours"
)
#: The action a reservation is made for (named when the budget's storage cannot be asked).
CREATE_ACTION = "CreateAigcImageTask"


@dataclass(frozen=True)
class ImageBudget:
    """
    An image budget as configured: its rate and the setting it came from.

    :param rate: the budget in the ``limits`` rate syntax, e.g. ``2000 per day``.
    :param setting: where it was set, for messages: ``[tencentcloud_mps] image_budget`` or the
        connection's extra.
    """

    rate: str
    setting: str


@dataclass(frozen=True)
class Reservation:
    """
    Images reserved from the budget for one create (a single task or a whole batch).

    :param budget: the budget they were reserved from.
    :param count: the images reserved.
    :param used: the images counted in the window right after this reservation, this one's included.
    :param limit: the most images the window holds.
    """

    budget: ImageBudget
    count: int
    used: int
    limit: int


class MpsBudgetExceededError(MpsError):
    """
    The image budget cannot cover a create now, so nothing was sent.

    Airflow's retries apply: the window moves on, and a retry after the images counted first have
    left it reserves again.

    :param budget: the budget that refused.
    :param count: the images the create asked for.
    :param used: the images counted in the window when it refused.
    :param limit: the most images the window holds.
    :param frees_at: when the oldest image counted leaves the window (seconds since the epoch).
    :param what: what asked for the images, e.g. ``the create of task 'make_shots'``.
    """

    def __init__(
        self, budget: ImageBudget, count: int, used: int, limit: int, frees_at: float, what: str
    ) -> None:
        self.budget = budget
        self.count = count
        self.used = used
        self.limit = limit
        self.frees_at = frees_at
        self.what = what
        must_leave = max(used + count - limit, 1)
        frees = f"{_utc(frees_at)} (in {_duration(frees_at - time.time())})"
        super().__init__(
            f"The image budget {budget.rate} ({budget.setting}) cannot cover the {count} image(s) of {what}: "
            f"{used} of {limit} are used in the current window, so nothing was sent. The oldest image "
            f"counted leaves the window at {frees}; {must_leave} must leave before these fit. Airflow's "
            "retries try again; a FAILed MPS task keeps its images counted, so the budget bounds what was "
            "asked for, not what was billed."
        )

    def __reduce__(self):
        return (
            type(self),
            (self.budget, self.count, self.used, self.limit, self.frees_at, self.what),
        )


def check_max_images(count: int, max_images: int | None, field: str) -> None:
    """
    Refuse a create asking for more than ``max_images`` images, before anything is sent.

    :param count: the images the rendered request asks for.
    :param max_images: the operator's cap, or ``None`` for none.
    :param field: where ``count`` came from, named in the error, e.g. ``output_image_count`` or
        ``the sum of output_image_count over 30 requests``.
    :raises MpsInvalidParameterError: (no Airflow retries) when ``max_images`` is not a whole number
        of at least 1, or ``count`` is over it.
    """
    check_count("max_images", max_images, minimum=1, what="images", none="no cap")
    if max_images is None:
        return
    if count > max_images:
        raise MpsInvalidParameterError(
            field,
            f"asks for {count} images, more than max_images={max_images} allows, so nothing was sent and the "
            "task fails without retries (the same input asks for the same count). Fix the input, or raise "
            "max_images if this many images is intended.",
            count,
        )


def image_budget(*, conn_id: str, extra: object = None) -> ImageBudget | None:
    """
    Return the budget that applies to a connection: its ``image_budget`` extra, else the configuration's.

    :param conn_id: the connection, named as the setting when its extra sets the budget.
    :param extra: the connection's ``image_budget`` extra (``MpsConnectionSettings.image_budget``).
    :return: the budget, or ``None`` when neither sets one (empty values set none).
    """
    if extra is not None and str(extra).strip():
        return ImageBudget(str(extra).strip(), f"extra '{IMAGE_BUDGET_OPTION}' of connection '{conn_id}'")
    from airflow.providers.common.compat.sdk import conf

    value = conf.get(CONFIG_SECTION, IMAGE_BUDGET_OPTION, fallback=None)
    if value is None or not str(value).strip():
        return None
    return ImageBudget(str(value).strip(), f"[{CONFIG_SECTION}] {IMAGE_BUDGET_OPTION}")


def parse_budget(budget: ImageBudget) -> tuple[int, int]:
    """
    Return the budget's ``(images, window seconds)``.

    :param budget: the budget to read.
    :raises MpsInvalidParameterError: (no Airflow retries) naming the setting and the syntax when the
        rate is not one rate of the ``limits`` syntax.
    """
    limits = _limits()
    try:
        items = limits.parse_many(budget.rate)
    except ValueError:
        items = []
    if len(items) != 1:
        raise MpsInvalidParameterError(budget.setting, f"must be one rate, {BUDGET_SYNTAX}.", budget.rate)
    return int(items[0].amount), int(items[0].get_expiry())


def reserve_images(
    key: str, count: int, *, budget: ImageBudget | None, storage_uri: str | None, what: str
) -> Reservation | None:
    """
    Reserve ``count`` images of ``key``'s budget, all at once, before a create is sent.

    :param key: a non-secret name of the account, ``MpsHook.rate_limit_key`` (``<SecretId>@<endpoint>``).
    :param count: the images the create asks for (a batch's whole count).
    :param budget: the budget that applies (:func:`image_budget`), or ``None``: nothing is counted.
    :param storage_uri: ``[tencentcloud_mps] quota_storage_uri`` (:func:`~airflow_provider_mps.utils.
        shared_quota.quota_storage_uri`), the store every process counts in.
    :param what: what asks for the images, for the log and errors, e.g. ``the create of task 'shots'``.
    :return: the reservation, or ``None`` without a budget.
    :raises MpsInvalidParameterError: (no Airflow retries) when the budget is set without a storage
        every process reaches (none, or ``memory://``), is malformed, or is smaller than ``count`` so
        that no window could ever cover it.
    :raises MpsBudgetExceededError: (retried) when what is left of the window cannot cover ``count``.
    :raises MpsNetworkError: (retried) when the storage cannot be asked; nothing was sent.
    """
    if budget is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"The images to reserve must be a whole number of at least 1, got {count!r}.")
    storage_uri = _shared_storage_uri(budget, storage_uri)
    limit, expiry = parse_budget(budget)
    if count > limit:
        raise MpsInvalidParameterError(
            f"image count of {what}",
            f"asks for {count} images, more than the whole image budget {budget.rate} ({budget.setting}) "
            "allows in one window, so no retry could ever send it; nothing was sent.",
            count,
        )
    storage = _moving_window_storage(budget, storage_uri)
    limits = _limits()
    storage_key = f"{NAMESPACE}/image-budget/{key}/{expiry}s"
    try:
        reserved = storage.acquire_entry(storage_key, limit, expiry, amount=count)
        start, used = storage.get_moving_window(storage_key, limit, expiry)
    except limits.errors.StorageError as error:
        raise _storage_unavailable(storage_uri, error) from None
    if not reserved:
        raise MpsBudgetExceededError(budget, count, int(used), limit, float(start) + expiry, what)
    log.info(
        "Reserved %s image(s) for %s from the image budget %s (%s): %s of %s used in the window",
        count,
        what,
        budget.rate,
        budget.setting,
        used,
        limit,
    )
    return Reservation(budget=budget, count=count, used=int(used), limit=limit)


def _shared_storage_uri(budget: ImageBudget, storage_uri: str | None) -> str:
    """Return ``storage_uri`` if every process reaches it (set, and not ``memory://``); else refuse."""
    if storage_uri is None:
        raise MpsInvalidParameterError(
            budget.setting,
            "is counted across every process of the deployment, so it needs a store they all reach: set "
            f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION} (AIRFLOW__{CONFIG_SECTION.upper()}__"
            f"{QUOTA_STORAGE_URI_OPTION.upper()}), such as redis://redis-host:6379/0, in every component, "
            "or unset the budget. A count kept per process would not bound the account's spend.",
            budget.rate,
        )
    if urllib.parse.urlsplit(storage_uri).scheme == "memory":
        raise MpsInvalidParameterError(
            f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION}",
            f"counts in each process alone with memory://, so it cannot hold {budget.setting} across the "
            "deployment: name a store every process reaches, such as redis://redis-host:6379/0.",
            storage_uri,
        )
    return storage_uri


def _moving_window_storage(budget: ImageBudget, storage_uri: str) -> Any:
    """Return the ``limits`` storage of ``storage_uri``; refuse one that keeps no moving window."""
    storage = _storage(storage_uri)
    if not isinstance(storage, _limits().storage.MovingWindowSupport):
        raise MpsInvalidParameterError(
            f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION}",
            "must name a storage that keeps a moving window, such as redis://host:6379/0, for "
            f"{budget.setting}.",
            redact_storage_uri(storage_uri),
        )
    return storage


def _storage_unavailable(storage_uri: str, error: Any) -> MpsNetworkError:
    cause = error.storage_error
    return MpsNetworkError(
        "ClientNetworkError.BudgetStorageUnavailable",
        f"The image budget's storage {redact_storage_uri(storage_uri)} could not be asked for a reservation "
        f"({type(cause).__name__}: {cause}), so the request was not sent.",
        None,
        CREATE_ACTION,
        request_may_have_reached_service=False,
    )


def _utc(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    """``2 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    whole = max(int(seconds + 0.999), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
