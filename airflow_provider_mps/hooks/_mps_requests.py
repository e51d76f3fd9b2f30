"""
The one request path of :class:`~airflow_provider_mps.hooks.mps.MpsHook`, and its retries.

Every request, sync or async, create or describe, goes through :meth:`MpsRequestHook._call` or
:meth:`MpsRequestHook._acall`, which differ only in transport.  Each, in order:

1. refreshes a role's temporary keys when the client signs with them, and registers new secrets
   with Airflow's masker (the async path refreshes in a worker thread: the SDK's refresh is a
   blocking HTTP call);
2. waits at the hook's own limiter of the action (``rate_limit``, if set), then at the process's
   limiter of the account and action (``[tencentcloud_mps] quota_share``), so no caller bypasses
   the process's share of the quota;
3. sends the request and maps any failure to the provider's exceptions.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mps.exceptions import MpsError, MpsNetworkError
from airflow_provider_mps.hooks._mps_api import sdk_request
from airflow_provider_mps.hooks._mps_base import MpsBaseHook, amask_secret
from airflow_provider_mps.hooks._mps_credentials import RoleKeys
from airflow_provider_mps.hooks._mps_errors import backoff_delay, to_mps_error
from airflow_provider_mps.utils.rate_limit import RateLimiter, headroom_for, process_rate_limiter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")

#: The shortest timeout a request bounded by a deadline gets, in seconds: a wait whose deadline is
#: (nearly) past still makes its call, and overruns the deadline by at most this much.
MIN_REQUEST_TIMEOUT = 1.0


class DeadlineReached(MpsError):
    """
    A failed request was not retried: its backoff would have ended after the deadline.

    :param error: the failure that was not retried.
    """

    def __init__(self, error: MpsError) -> None:
        self.error = error
        super().__init__(f"No time was left before the deadline to retry after: {error}")


def _refresh_role_keys(keys: RoleKeys, action: str) -> list[str]:
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


class MpsRequestHook(MpsBaseHook):
    """
    Send requests through the SDK clients of :class:`MpsBaseHook`, rate-limited, and retry them.

    Takes the arguments of :class:`MpsBaseHook`.
    """

    def _limiters(self, action: str, key: str) -> list[RateLimiter]:
        """The limiters a request of ``action`` waits at: the hook's own spacing, then the process's."""
        limiters = []
        if self.rate_limit is not None:
            with self._lock:
                own = self._own_limiters.get(action)
                if own is None:
                    own = self._own_limiters[action] = RateLimiter(
                        self.rate_limit, headroom=headroom_for(action)
                    )
            limiters.append(own)
        limiters.append(process_rate_limiter(key, action))
        return limiters

    def _call(self, action: str, params: dict[str, Any], *, timeout: float | None = None) -> Any:
        """
        Send one ``action`` request with the sync client and return the SDK's response.

        :param timeout: end the request within this many seconds, if sooner than ``request_timeout``.
        """
        from airflow.providers.common.compat.sdk import mask_secret

        client = self._client_with_timeout(timeout)
        request = sdk_request(action, params)
        if isinstance(client.credential, RoleKeys):
            for secret in _refresh_role_keys(client.credential, action):
                mask_secret(secret)
        for limiter in self._limiters(action, self.rate_limit_key):
            limiter.acquire()
        try:
            return getattr(client, action)(request)
        except Exception as error:
            raise to_mps_error(error, action) from error

    async def _acall(self, action: str, params: dict[str, Any]) -> Any:
        """Send one ``action`` request with the async client; nothing here blocks the event loop."""
        client = await self.aget_conn()
        request = sdk_request(action, params)
        if isinstance(client.credential, RoleKeys):
            # The refresh may call the metadata service or STS: in a worker thread.
            for secret in await asyncio.to_thread(_refresh_role_keys, client.credential, action):
                await amask_secret(secret)
        for limiter in self._limiters(action, await self.arate_limit_key()):
            await limiter.aacquire()
        try:
            return await getattr(client, action)(request)
        except Exception as error:
            raise to_mps_error(error, action) from error

    # -- retries ------------------------------------------------------------------------------

    def _log_retry(self, action: str, error: MpsError, attempt: int, delay: float) -> None:
        self.log.warning(
            "%s failed with %s: %s (RequestId %s); retry %d of %d in %.1f s.",
            action,
            getattr(error, "code", type(error).__name__),
            getattr(error, "message", str(error)),
            getattr(error, "request_id", None) or "none",
            attempt,
            self.retry_limit,
            delay,
        )

    def _with_retries(
        self,
        action: str,
        attempt_once: Callable[[float | None], T],
        retryable: Callable[[MpsError], bool],
        *,
        deadline: float | None = None,
    ) -> T:
        """
        Call ``attempt_once(timeout)`` until it succeeds, retrying the failures ``retryable`` accepts.

        :param deadline: a ``time.monotonic()`` time to end by, or ``None``.  Each attempt gets the
            time left as its ``timeout`` (at least :data:`MIN_REQUEST_TIMEOUT`).
        :raises DeadlineReached: when a retry's backoff would reach the deadline.
        """
        attempt = 0
        while True:
            timeout = None if deadline is None else max(deadline - time.monotonic(), MIN_REQUEST_TIMEOUT)
            try:
                return attempt_once(timeout)
            except MpsError as error:
                if attempt >= self.retry_limit or not retryable(error):
                    raise
                delay = backoff_delay(attempt + 1, self.retry_delay)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise DeadlineReached(error) from error
                attempt += 1
                self._log_retry(action, error, attempt, delay)
                time.sleep(delay)

    async def _awith_retries(
        self, action: str, attempt_once: Callable[[], Awaitable[T]], retryable: Callable[[MpsError], bool]
    ) -> T:
        attempt = 0
        while True:
            try:
                return await attempt_once()
            except MpsError as error:
                if attempt >= self.retry_limit or not retryable(error):
                    raise
                attempt += 1
                delay = backoff_delay(attempt, self.retry_delay)
                self._log_retry(action, error, attempt, delay)
                await asyncio.sleep(delay)
