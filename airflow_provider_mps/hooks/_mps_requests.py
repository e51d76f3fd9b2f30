"""
The one request path of :class:`~airflow_provider_mps.hooks.mps.MpsHook`.

Every request, sync or async, create or describe, goes through :func:`send` or :func:`asend`,
which differ only in transport.  Each, in order:

1. refreshes a role's temporary keys when the client signs with them, and registers new secrets
   with Airflow's masker (the async path refreshes in a worker thread: the refresh may call the
   metadata service or STS);
2. waits at the hook's own limiter of the action (``rate_limit``, if set), then at the process's
   limiter of the account and action (``[tencentcloud_mps] quota_share``), so no caller bypasses
   the process's share of the quota (:func:`request_limiters`);
3. sends the request and maps any failure to the provider's exceptions.

Plain functions and one small cache: the hook holds the clients and calls these to send.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.core.api import sdk_request
from airflow_provider_mps.core.errors import to_mps_error
from airflow_provider_mps.exceptions import MpsNetworkError
from airflow_provider_mps.hooks._mps_clients import amask_secrets, mask_secrets
from airflow_provider_mps.hooks._mps_credentials import RoleKeys
from airflow_provider_mps.utils.rate_limit import RateLimiter, headroom_for, process_rate_limiter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


class OwnLimiters:
    """A hook's own spacing of its requests: one :class:`RateLimiter` per action, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[str, RateLimiter] = {}

    def get(self, action: str, rate: float) -> RateLimiter:
        """
        Return the limiter of ``action``, made at ``rate`` requests per second if there is none yet.

        :param action: the API action the limiter spaces.
        :param rate: the hook's ``rate_limit``; a limiter keeps the rate it was made with.
        """
        with self._lock:
            limiter = self._limiters.get(action)
            if limiter is None:
                limiter = self._limiters[action] = RateLimiter(rate, headroom=headroom_for(action))
            return limiter


def request_limiters(own: OwnLimiters, rate: float | None, action: str, key: str) -> list[RateLimiter]:
    """
    The limiters a request of ``action`` waits at: the hook's own spacing, then the process's.

    :param own: the hook's own limiters.
    :param rate: the hook's ``rate_limit``, or ``None`` for no spacing of its own.
    :param action: the API action.
    :param key: the hook's ``rate_limit_key``, naming the account and endpoint.
    """
    limiters = [] if rate is None else [own.get(action, rate)]
    limiters.append(process_rate_limiter(key, action))
    return limiters


def refresh_role_keys(keys: RoleKeys, action: str) -> list[str]:
    """Refresh a role's keys before ``action`` is sent; a failure means nothing was sent."""
    try:
        return keys.refresh()
    except Exception as error:
        raise MpsNetworkError(
            "ClientNetworkError.CredentialRefreshFailed",
            f"Refreshing the role's temporary credentials failed, so the request was not sent: {error}",
            None,
            action,
            request_may_have_reached_service=False,
        ) from error


def send(
    client: Any, action: str, params: Mapping[str, Any], limiters: Callable[[], Iterable[RateLimiter]]
) -> Any:
    """
    Send one ``action`` request with the SDK's sync ``client`` and return the SDK's response.

    :param client: the SDK's sync ``MpsClient``.
    :param action: the API action, e.g. ``DescribeAigcImageTask``.
    :param params: its parameters under the API's names.
    :param limiters: returns the limiters to wait at, asked once the keys are refreshed.
    :raises MpsError: what any failure becomes (:func:`~airflow_provider_mps.core.errors.to_mps_error`).
    """
    request = sdk_request(action, params)
    if isinstance(client.credential, RoleKeys):
        mask_secrets(refresh_role_keys(client.credential, action))
    for limiter in limiters():
        limiter.acquire()
    try:
        return getattr(client, action)(request)
    except Exception as error:
        raise to_mps_error(error, action) from error


async def asend(
    client: Any, action: str, params: Mapping[str, Any], limiters: Callable[[], Iterable[RateLimiter]]
) -> Any:
    """
    Async :func:`send`, with the SDK's async ``client``: nothing here blocks the event loop.

    Takes the arguments of :func:`send`.
    """
    request = sdk_request(action, params)
    if isinstance(client.credential, RoleKeys):
        await amask_secrets(await asyncio.to_thread(refresh_role_keys, client.credential, action))
    for limiter in limiters():
        await limiter.aacquire()
    try:
        return await getattr(client, action)(request)
    except Exception as error:
        raise to_mps_error(error, action) from error
