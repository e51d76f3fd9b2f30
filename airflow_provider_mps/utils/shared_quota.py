"""
The shared quota mode: every process of the deployment draws from one account-wide budget.

The per-process mode (:mod:`airflow_provider_mps.utils.rate_limit`) gives each process a fixed
share of the account's 20 requests per second, which needs no infrastructure but leaves the share
of an idle process unused.  When ``[tencentcloud_mps] quota_storage_uri`` names a storage the
`limits <https://limits.readthedocs.io>`__ library supports (``redis://127.0.0.1:6379/0``, the
Redis a CeleryExecutor deployment already runs; ``memory://`` within one process), every request
of every process also takes a slot of a **moving window** of :func:`window_budget` requests per
second, kept in that storage per account and action.  The service's quota then holds whatever the
number of workers and triggerers, and one busy process may use all of it.

Each process still queues its own callers in its
:class:`~airflow_provider_mps.utils.rate_limit.RateLimiter` (its spacing at the process's
:func:`~airflow_provider_mps.utils.rate_limit.quota_share`, the whole quota by default), given a
:class:`SharedQuotaWindow`; only the head of that queue asks the storage: a triggerer with a
thousand waiting triggers sends one request to Redis at a time, not a thousand.  The storage is
asked synchronously: from the calling thread, or for coroutines in a worker thread
(:func:`asyncio.to_thread`), never on the event loop.  A budget the storage cannot be asked about
fails the request before it is sent (:class:`~airflow_provider_mps.exceptions.MpsNetworkError`,
"never reached the service"), which the hook's retries treat like a refused connection.  This
module imports nothing of the rate limiter: the limiter holds the window, not the other way round.

``limits`` is optional: install the provider's ``shared-quota`` extra.  The URI may hold a
password; it is shown only through :func:`redact_storage_uri`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.parse
from typing import Any

from airflow_provider_mps import CONFIG_SECTION, SERVICE_QUOTA_PER_SECOND

log = logging.getLogger(__name__)

#: The option naming the storage of the shared budget (declared in ``get_provider_info()``).
QUOTA_STORAGE_URI_OPTION = "quota_storage_uri"
#: The provider's extra that installs ``limits`` with its Redis client.
EXTRA = "shared-quota"
#: The first part of every key of the budget in the storage.
NAMESPACE = "airflow-provider-tencentcloud-mps"
#: The longest wait before the head asks the storage again, in seconds.
MAX_POLL = 0.5
#: How long after a slot of the full window frees its next request waits, in seconds.  Requests
#: reach the service some milliseconds after they took their slot, some later than others (tens
#: of milliseconds on a busy 2-core machine); a request sent the instant its slot frees, exactly
#: one second after the request it replaces, could reach the service inside that request's second.
#: At 19 creates per window it costs 4 % of the rate (``bench/RESULTS.md``, distributed).
REFILL_DELAY = 0.04

_SECRET_QUERY_KEYS = ("password", "secret", "token", "key")


def quota_storage_uri() -> str | None:
    """
    Return ``[tencentcloud_mps] quota_storage_uri``, or ``None`` when unset or empty (per-process mode).

    Set it with ``AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI`` (or its ``_SECRET`` / ``_CMD``
    variants, the option being sensitive) in every component of the deployment.
    """
    from airflow.providers.common.compat.sdk import conf

    value = conf.get(CONFIG_SECTION, QUOTA_STORAGE_URI_OPTION, fallback=None)
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def redact_storage_uri(uri: str) -> str:
    """
    Return ``uri`` with its user, password and secret-looking query values replaced by ``***``.

    :param uri: a storage URI such as ``redis://:p4ss@127.0.0.1:6379/0``.
    """
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return "***"
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if any(word in name.lower() for name, _ in pairs for word in _SECRET_QUERY_KEYS):
        query = urllib.parse.urlencode(
            [
                (name, "***" if any(word in name.lower() for word in _SECRET_QUERY_KEYS) else value)
                for name, value in pairs
            ],
            safe="*",
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def window_budget(headroom: float) -> int:
    """
    Requests per moving one-second window the whole deployment may send, per account and action.

    The service's quota less ``headroom`` (rounded down): the requests of one window reach the
    service spread by network jitter, so a window full to the quota could overlap the next.

    :param headroom: the share of the quota kept unused (the action's, from ``rate_limit.headroom_for()``).
    """
    return max(1, math.floor(SERVICE_QUOTA_PER_SECOND * (1.0 - headroom) + 1e-9))


def _limits() -> Any:
    """Import ``limits`` (the ``shared-quota`` extra), or say how to install it."""
    try:
        import limits
        import limits.errors
        import limits.storage
        import limits.strategies
    except ImportError as error:
        from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

        raise AirflowOptionalProviderFeatureException(
            f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION} is set, so the provider shares the quota "
            "through the `limits` library, which is not installed: install the provider's "
            f"`{EXTRA}` extra (pip install 'airflow-provider-tencentcloud-mps[{EXTRA}]')."
        ) from error
    return limits


_storages: dict[str, Any] = {}
_storages_lock = threading.Lock()


def _storage(uri: str) -> Any:
    """The process's one ``limits`` storage of ``uri`` (one connection pool, shared by every limiter)."""
    with _storages_lock:
        storage = _storages.get(uri)
        if storage is None:
            limits = _limits()
            from airflow_provider_mps.exceptions import MpsInvalidParameterError

            if urllib.parse.urlsplit(uri).scheme.startswith("async+"):
                raise MpsInvalidParameterError(
                    f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION}",
                    "must name a synchronous storage of the limits library, such as "
                    "redis://host:6379/0 (the provider asks it off the event loop itself)",
                    redact_storage_uri(uri),
                )
            try:
                storage = limits.storage.storage_from_string(uri, wrap_exceptions=True)
            except limits.errors.ConfigurationError as error:
                # Its message repeats the URI, password included: not chained into tracebacks.
                raise MpsInvalidParameterError(
                    f"[{CONFIG_SECTION}] {QUOTA_STORAGE_URI_OPTION}",
                    "must be a storage URI the limits library supports, such as redis://host:6379/0 "
                    f"or memory:// ({type(error).__name__})",
                    redact_storage_uri(uri),
                ) from None
            _storages[uri] = storage
            log.info("The MPS quota is shared through %s", redact_storage_uri(uri))
        return storage


def clear_storages() -> None:
    """Forget the process's storages, so the next limiter connects afresh (used by tests)."""
    with _storages_lock:
        _storages.clear()


class SharedQuotaWindow:
    """
    The account-wide moving window of one action, held in a ``limits`` storage.

    A process's :class:`~airflow_provider_mps.utils.rate_limit.RateLimiter` given this window
    takes a slot of it (:meth:`take`) for the caller at the head of its queue, once its own
    spacing allows the call.

    :param storage_uri: the ``limits`` storage holding the budget, e.g. ``redis://127.0.0.1:6379/0``.
    :param key: a non-secret name of the account and endpoint (``MpsHook.rate_limit_key``).
    :param action: the API action the quota applies to.
    :param headroom: the share of the quota kept unused (the action's, as the limiter's spacing keeps).
    """

    def __init__(self, *, storage_uri: str, key: str, action: str, headroom: float) -> None:
        limits = _limits()
        self.storage_uri = storage_uri
        self.action = action
        self.budget = window_budget(headroom)
        self._item = limits.RateLimitItemPerSecond(self.budget, 1, namespace=NAMESPACE)
        self._identifiers = (key, action)
        self._strategy = limits.strategies.MovingWindowRateLimiter(_storage(storage_uri))
        self._storage_error = limits.errors.StorageError

    def __repr__(self) -> str:
        return (
            f"SharedQuotaWindow(storage={redact_storage_uri(self.storage_uri)!r}, "
            f"action={self.action!r}, budget={self.budget})"
        )

    def take(self) -> float:
        """
        Take a slot of the window; return 0, or the seconds to wait before asking again.

        It blocks on the storage's network client: coroutines call it in a worker thread.

        :raises MpsNetworkError: when the storage cannot be asked (the request is not sent).
        """
        try:
            if self._strategy.hit(self._item, *self._identifiers):
                return 0.0
            reset_at = self._strategy.get_window_stats(self._item, *self._identifiers).reset_time
        except self._storage_error as error:
            from airflow_provider_mps.exceptions import MpsNetworkError

            raise MpsNetworkError(
                "ClientNetworkError.QuotaStorageUnavailable",
                f"The shared quota's storage {redact_storage_uri(self.storage_uri)} could not be asked "
                f"for a slot ({type(error.storage_error).__name__}: {error.storage_error}), so the request "
                "was not sent.",
                None,
                self.action,
                request_may_have_reached_service=False,
            ) from None
        return min(max(reset_at - time.time(), 0.0) + REFILL_DELAY, MAX_POLL)
