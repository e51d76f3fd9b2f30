"""
The connection, credentials and SDK clients behind :class:`~airflow_provider_mps.hooks.mps.MpsHook`.

:class:`MpsBaseHook` reads and checks the ``tencentcloud_mps`` connection (sync for tasks, async
for triggers), resolves the credential and builds the SDK's sync and async clients.  The one
request path through them, and retries, are in :mod:`~airflow_provider_mps.hooks._mps_requests`;
the API calls the operators use live on ``MpsHook``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

# Imported with the hook (in a worker thread, for the triggers), not on the event loop at first use.
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_mps import DEFAULT_CONN_ID
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.hooks import _shared_async_clients
from airflow_provider_mps.hooks._mps_connection import (
    KNOWN_EXTRAS,
    build_client_profile,
    settings_from_connection,
    unknown_extras,
)
from airflow_provider_mps.hooks._mps_connection_form import CONNECTION_TYPE
from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential, resolve_credential
from airflow_provider_mps.hooks._sdk_logging import guard_sdk_logger
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import Hashable

    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.utils.rate_limit import RateLimiter


async def amask_secret(secret: str) -> None:
    """
    Register ``secret`` with the masker from async code (a trigger's event loop).

    Airflow 3.3 has ``amask_secret``.  Before it, the sync ``mask_secret`` tells the supervisor
    through a blocking call that fails on the event loop's thread (Airflow 3.0 raises; 3.1 drops
    the message), so it runs in asgiref's ``sync_to_async`` worker thread, as common-compat's
    ``get_async_extra_dejson`` does: from there (unlike a plain thread) the triggerer's
    ``async_to_sync`` channel reaches the trigger's loop.
    """
    if AIRFLOW_V_3_3_PLUS:
        from airflow.sdk.log import amask_secret as airflow_amask_secret

        await airflow_amask_secret(secret)
    else:
        from airflow.providers.common.compat.sdk import mask_secret
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)


def check_seconds(field: str, value: object, *, minimum: float | None) -> None:
    """Refuse ``value`` unless it is a number of seconds above 0 (or at least ``minimum``)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if minimum is None and not (is_number and value > 0):  # type: ignore[operator]
        raise MpsInvalidParameterError(field, "must be a number of seconds greater than 0.", value)
    if minimum is not None and not (is_number and value >= minimum):  # type: ignore[operator]
        raise MpsInvalidParameterError(field, f"must be a number of seconds, {minimum:g} or more.", value)


def _rate_limit_key(credential: ResolvedCredential, settings: MpsConnectionSettings) -> str:
    return f"{credential.account_key}@{settings.endpoint}"


class MpsBaseHook(BaseHook):
    """
    The ``tencentcloud_mps`` connection and the SDK clients built from it, read and built on first use.

    :param mps_conn_id: the ``tencentcloud_mps`` connection to use.
    :param region: a Tencent Cloud region overriding the connection's ``region`` extra.
    :param retry_limit: how many times a transient failure is retried.
    :param retry_delay: the backoff scale in seconds; retry ``n`` waits up to
        ``retry_delay * 2 ** (n - 1)`` seconds, with jitter.
    :param rate_limit: the most requests per second of each action this hook sends (its own
        spacing), or ``None`` for no limit of its own.  Every request also waits at the process's
        limiter of the account, whose rate is ``[tencentcloud_mps] quota_share``; this never changes it.
    """

    conn_type = CONNECTION_TYPE

    def __init__(
        self,
        mps_conn_id: str = DEFAULT_CONN_ID,
        *,
        region: str | None = None,
        retry_limit: int = 3,
        retry_delay: float = 1.0,
        rate_limit: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(retry_limit, bool) or not isinstance(retry_limit, int) or retry_limit < 0:
            raise MpsInvalidParameterError("retry_limit", "must be a whole number, 0 or more.", retry_limit)
        check_seconds("retry_delay", retry_delay, minimum=0)
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not isinstance(rate_limit, (int, float)) or not rate_limit > 0
        ):
            raise MpsInvalidParameterError(
                "rate_limit", "must be a number of requests per second greater than 0, or None.", rate_limit
            )
        self.mps_conn_id = mps_conn_id
        self.region = region
        self.retry_limit = retry_limit
        self.retry_delay = float(retry_delay)
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        self._lock = threading.Lock()
        self._settings: MpsConnectionSettings | None = None
        self._credential: ResolvedCredential | None = None
        self._own_limiters: dict[str, RateLimiter] = {}
        self._client: Any = None
        self._async_client: Any = None
        self._async_client_loop: asyncio.AbstractEventLoop | None = None
        self._async_client_key: Hashable | None = None

    # -- connection ---------------------------------------------------------------------------

    def _settings_from(self, conn: Any, extras: dict[str, Any]) -> MpsConnectionSettings:
        settings = settings_from_connection(
            conn_id=self.mps_conn_id,
            conn_type=self.conn_type,
            login=conn.login,
            password=conn.password,
            extras=extras,
            region=self.region,
        )
        if unread := unknown_extras(extras, self.conn_type):
            self.log.warning(
                "Connection %s has extras %s that a tencentcloud_mps connection does not read; "
                "the known extras are %s.",
                self.mps_conn_id,
                ", ".join(unread),
                ", ".join(KNOWN_EXTRAS),
            )
        return settings

    @property
    def settings(self) -> MpsConnectionSettings:
        """The validated connection (read on first use; its secrets are registered for masking)."""
        from airflow.providers.common.compat.sdk import mask_secret

        with self._lock:
            if self._settings is None:
                conn = self.get_connection(self.mps_conn_id)
                settings = self._settings_from(conn, conn.extra_dejson)
                for secret in settings.secrets():
                    mask_secret(secret)
                self._settings = settings
            return self._settings

    async def _asettings(self) -> MpsConnectionSettings:
        """
        The validated connection, read without blocking the event loop (for triggers).

        A sync ``get_connection`` on a triggerer's event loop fails on Airflow 3.0, so the
        connection and its extra are read through common-compat, which picks the way each line
        allows: ``aget_connection`` / ``aextra_dejson`` on 3.3, the sync calls in a worker thread
        before.
        """
        if self._settings is None:
            conn = await get_async_connection(self.mps_conn_id, self)
            extras = await get_async_extra_dejson(conn)
            settings = self._settings_from(conn, extras)
            for secret in settings.secrets():
                await amask_secret(secret)
            self._settings = settings
        return self._settings

    def _resolve_credential(self, settings: MpsConnectionSettings) -> tuple[ResolvedCredential, bool]:
        """Resolve the credential once; return it and whether this call resolved it."""
        with self._lock:
            if self._credential is not None:
                return self._credential, False
            self._credential = resolve_credential(settings)
        self.log.info(
            "Using Tencent Cloud credentials from %s for MPS at %s (region %s).",
            self._credential.source,
            settings.endpoint,
            settings.region,
        )
        return self._credential, True

    @property
    def credential(self) -> ResolvedCredential:
        """The credential the clients sign with: the connection's keys or the SDK's chain."""
        from airflow.providers.common.compat.sdk import mask_secret

        credential, fresh = self._resolve_credential(self.settings)
        if fresh:
            for secret in credential.secrets():
                mask_secret(secret)
        return credential

    async def _acredential(self) -> ResolvedCredential:
        if self._credential is not None:
            return self._credential
        settings = await self._asettings()
        # The chain may probe the instance metadata service: keep it off the event loop.
        credential, fresh = await asyncio.to_thread(self._resolve_credential, settings)
        if fresh:
            for secret in credential.secrets():
                await amask_secret(secret)
        return credential

    @property
    def rate_limit_key(self) -> str:
        """
        A non-secret key naming the account and endpoint: ``<SecretId>@<endpoint>``.

        For a role's temporary keys, whose SecretId changes at each refresh, the role names the
        account instead, e.g. ``CVM role 'mps-role'@https://mps.tencentcloudapi.com``.
        """
        return _rate_limit_key(self.credential, self.settings)

    async def arate_limit_key(self) -> str:
        """Async :attr:`rate_limit_key`: the connection is read without blocking the event loop."""
        settings = await self._asettings()
        credential = await self._acredential()
        return _rate_limit_key(credential, settings)

    # -- SDK clients --------------------------------------------------------------------------

    def _build_client(self, settings: MpsConnectionSettings, credential: ResolvedCredential) -> Any:
        from tencentcloud.mps.v20190612.mps_client import MpsClient

        guard_sdk_logger()
        return MpsClient(credential.credential, settings.region, build_client_profile(settings))

    def get_conn(self) -> Any:
        """Return the SDK's sync ``MpsClient`` for this connection (built once, then reused)."""
        if self._client is None:
            settings, credential = self.settings, self.credential
            with self._lock:
                if self._client is None:
                    self._client = self._build_client(settings, credential)
        return self._client

    def _client_with_timeout(self, timeout: float | None) -> Any:
        """
        The sync client, or for a request that must end within ``timeout`` seconds, one of its own.

        The SDK reads a client's timeout from its profile, so a request bounded by a deadline
        that is closer than ``request_timeout`` gets a client built with the shorter timeout.
        """
        client = self.get_conn()
        settings = self.settings
        if timeout is None or timeout >= settings.request_timeout:
            return client
        return self._build_client(dataclasses.replace(settings, request_timeout=timeout), self.credential)

    async def aget_conn(self) -> Any:
        """
        Return the SDK's async ``MpsClient`` for the running event loop.

        The client is shared by every hook of this process with the same connection settings on
        this loop (see :mod:`~airflow_provider_mps.hooks._shared_async_clients`): hundreds of
        triggers in one triggerer cost one client, built in a worker thread (loading the CA bundle
        would block the loop).  The hook holds it until :meth:`aclose`.
        """
        loop = asyncio.get_running_loop()
        if self._async_client is not None and self._async_client_loop is loop:
            return self._async_client
        settings = await self._asettings()
        credential = await self._acredential()
        if self._async_client is not None and self._async_client_loop is loop:
            return self._async_client  # another coroutine of this hook got it meanwhile
        await self.aclose()  # a client of another (finished) loop cannot serve this one
        key = _shared_async_clients.client_key(settings, credential)
        unused: list[Any] = []
        client = await _shared_async_clients.acquire(
            key, lambda: self._build_async_client(settings, credential, unused)
        )
        for http_client in unused:
            await http_client.aclose()
        if self._async_client is not None and self._async_client_loop is loop:
            # Another coroutine of this hook acquired it meanwhile: keep one use, not two.
            _shared_async_clients.release(loop, key)
            return self._async_client
        self._async_client, self._async_client_loop, self._async_client_key = client, loop, key
        return client

    def _build_async_client(
        self, settings: MpsConnectionSettings, credential: ResolvedCredential, unused: list[Any]
    ) -> Any:
        """Build an async client (in a worker thread: it loads the CA bundle into an SSL context)."""
        import httpx
        from tencentcloud.mps.v20190612.mps_client_async import MpsClient

        guard_sdk_logger()
        profile = build_client_profile(settings, with_proxy=False)
        client = MpsClient(credential.credential, settings.region, profile)
        if settings.proxy:
            # httpx 0.28 dropped the ``proxies`` argument the SDK passes; give the client a proxy here.
            unused.append(client.http_client)
            client.http_client = httpx.AsyncClient(timeout=settings.request_timeout, proxy=settings.proxy)
        self.log.debug(
            "Built an SDK async client for MPS at %s (region %s).", settings.endpoint, settings.region
        )
        return client

    async def aclose(self) -> None:
        """
        Release the async client; close it if no other hook on its loop uses it.

        The sync client needs no closing.
        """
        client, loop, key = self._async_client, self._async_client_loop, self._async_client_key
        self._async_client = self._async_client_loop = self._async_client_key = None
        if client is None or loop is None:
            return
        last = _shared_async_clients.release(loop, key)
        if last is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is always awaited on a loop
            running = None
        if loop is running:
            await last.close()
        elif not loop.is_closed() and loop.is_running():
            asyncio.run_coroutine_threadsafe(last.close(), loop)
