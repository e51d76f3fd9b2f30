"""Hook for Tencent Cloud MPS AIGC image generation, over the official SDK (sync and async clients)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

# Imported with the hook (in a worker thread, for the triggers), not on the event loop at first use.
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_mps import DEFAULT_CONN_ID
from airflow_provider_mps.core.api import (
    CREATE_ACTION,
    DESCRIBE_ACTION,
    TEST_CONNECTION_ACTION,
    build_describe_params,
    parse_create_response,
    parse_describe_response,
    parse_test_connection_response,
)
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.core.fields import check_count
from airflow_provider_mps.core.retry import RetryPolicy, acall_with_retries, call_with_retries
from airflow_provider_mps.core.status import (
    SUCCESS_STATUSES,
    TERMINAL_STATUSES,
    MpsAigcImageTaskStatus,
)
from airflow_provider_mps.hooks import _mps_clients, _mps_requests, _shared_async_clients, _shared_reads
from airflow_provider_mps.hooks._mps_connection import read_connection
from airflow_provider_mps.hooks._mps_connection_form import (
    CONNECTION_TYPE,
    classic_ui_field_behaviour,
    connection_form_widgets,
)
from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential, resolve_credential
from airflow_provider_mps.validation import build_create_params, check_rate_limit, check_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping

    from airflow_provider_mps.exceptions import MpsError
    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.utils.rate_limit import RateLimiter

__all__ = ["SUCCESS_STATUSES", "TERMINAL_STATUSES", "MpsAigcImageTaskStatus", "MpsHook"]


class MpsHook(BaseHook):
    """
    Create and follow Tencent Cloud MPS AIGC image tasks through the official SDK.

    Constructing the hook is cheap: the connection is read and the SDK clients are built on first
    use, once per hook, and reused (keep-alive on).  Every request, sync or async, goes one way:
    a role's temporary keys are refreshed, the request waits at the hook's own limiter (if
    ``rate_limit``) and at the process's limiter of the account (``[tencentcloud_mps] quota_share``),
    is sent, and any failure becomes one of :mod:`airflow_provider_mps.exceptions`.  What is retried
    is decided by :func:`~airflow_provider_mps.core.errors.classify` and
    :class:`~airflow_provider_mps.core.retry.RetryPolicy`.

    :param mps_conn_id: the ``tencentcloud_mps`` connection to use.
    :param region: a Tencent Cloud region overriding the connection's ``region`` extra.
    :param retry_limit: how many times a failure is retried (read-only calls: any transient one; a
        create: only one that certainly created nothing).
    :param retry_delay: the backoff scale in seconds; retry ``n`` waits up to
        ``retry_delay * 2 ** (n - 1)`` seconds, with jitter.
    :param rate_limit: the most requests per second of each action this hook sends (its own
        spacing), or ``None`` for no limit of its own.
    """

    conn_name_attr = "mps_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Tencent Cloud MPS"

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
        check_count("retry_limit", retry_limit, minimum=0)
        check_seconds("retry_delay", retry_delay, minimum=0)
        check_rate_limit(rate_limit, optional=True)
        self.mps_conn_id = mps_conn_id
        self.region = region
        self.retry_limit = retry_limit
        self.retry_delay = float(retry_delay)
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        self._lock = threading.Lock()
        self._settings: MpsConnectionSettings | None = None
        self._credential: ResolvedCredential | None = None
        self._own_limiters = _mps_requests.OwnLimiters()
        self._client: Any = None
        self._async_client: Any = None
        self._async_client_loop: asyncio.AbstractEventLoop | None = None
        self._async_client_key: Hashable | None = None

    # -- connection form (declared once in _mps_connection_form) ------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the connection form's extra fields (Airflow 2.11 to 3.1; 3.2+ reads ``conn-fields``)."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the connection form's relabelled and hidden fields (Airflow 2.11 to 3.1)."""
        return classic_ui_field_behaviour()

    # -- connection and credential ------------------------------------------------------------

    def _settings_from(self, conn: Any, extras: dict[str, Any]) -> MpsConnectionSettings:
        return read_connection(
            conn, extras, conn_id=self.mps_conn_id, conn_type=self.conn_type, region=self.region, log=self.log
        )

    @property
    def settings(self) -> MpsConnectionSettings:
        """The validated connection (read on first use; its secrets are registered for masking)."""
        with self._lock:
            if self._settings is None:
                conn = self.get_connection(self.mps_conn_id)
                settings = self._settings_from(conn, conn.extra_dejson)
                _mps_clients.mask_secrets(settings.secrets())
                self._settings = settings
            return self._settings

    async def _asettings(self) -> MpsConnectionSettings:
        """
        The validated connection, read without blocking the event loop (for triggers).

        One read serves every hook of the same connection starting on this loop at about the same
        time (:mod:`~airflow_provider_mps.hooks._shared_reads`): a triggerer starting a thousand
        triggers reads the connection and resolves its credential once, not a thousand times, and
        logs where the credential came from once (in the log of the trigger that read it).
        """
        if self._settings is None:
            settings, credential = await _shared_reads.shared_read(
                (self.mps_conn_id, self.region, self.conn_type), self._aread_connection
            )
            self._use_credential(settings, lambda: credential, announce=False)
            self._settings = settings
        return self._settings

    async def _aread_connection(self) -> tuple[MpsConnectionSettings, ResolvedCredential]:
        """
        Read the connection and resolve its credential, both off the event loop; mask their secrets.

        Through common-compat, which picks the way each Airflow line allows: ``aget_connection`` on
        3.3, the sync lookup in a worker thread before (a sync lookup on the loop fails on 3.0).
        The credential chain may probe the instance metadata service: it runs in a worker thread.
        """
        conn = await get_async_connection(self.mps_conn_id, self)
        extras = await get_async_extra_dejson(conn)
        settings = self._settings_from(conn, extras)
        credential = await asyncio.to_thread(resolve_credential, settings)
        await _mps_clients.amask_secrets((*settings.secrets(), *credential.secrets()))
        self._announce(credential, settings)
        return settings, credential

    def _use_credential(
        self,
        settings: MpsConnectionSettings,
        resolve: Callable[[], ResolvedCredential],
        *,
        announce: bool = True,
    ) -> ResolvedCredential | None:
        """
        Sign with what ``resolve`` returns unless the hook has a credential; return it if taken.

        :param announce: log where the credential came from (a hook sharing another's read does not:
            a thousand triggers starting together log it once).
        """
        with self._lock:
            if self._credential is not None:
                return None
            credential = self._credential = resolve()
        if announce:
            self._announce(credential, settings)
        return credential

    def _announce(self, credential: ResolvedCredential, settings: MpsConnectionSettings) -> None:
        self.log.info(
            "Using Tencent Cloud credentials from %s for MPS at %s (region %s).",
            credential.source,
            settings.endpoint,
            settings.region,
        )

    @property
    def credential(self) -> ResolvedCredential:
        """The credential the clients sign with: the connection's keys or the SDK's chain."""
        if self._credential is None:
            settings = self.settings
            fresh = self._use_credential(settings, lambda: resolve_credential(settings))
            if fresh is not None:
                _mps_clients.mask_secrets(fresh.secrets())
        assert self._credential is not None
        return self._credential

    async def _acredential(self) -> ResolvedCredential:
        """The credential, for async callers: resolved with the connection's shared read."""
        if self._credential is None:
            settings = await self._asettings()
            if self._credential is None:  # the settings were read by the sync path
                credential = await asyncio.to_thread(resolve_credential, settings)
                if self._use_credential(settings, lambda: credential) is not None:
                    await _mps_clients.amask_secrets(credential.secrets())
        assert self._credential is not None
        return self._credential

    @property
    def rate_limit_key(self) -> str:
        """A non-secret key naming the account and endpoint: ``<SecretId>@<endpoint>`` (or the role)."""
        return _mps_clients.rate_limit_key(self.credential, self.settings)

    async def arate_limit_key(self) -> str:
        """Async :attr:`rate_limit_key`: the connection is read without blocking the event loop."""
        settings = await self._asettings()
        return _mps_clients.rate_limit_key(await self._acredential(), settings)

    # -- SDK clients --------------------------------------------------------------------------

    def get_conn(self) -> Any:
        """Return the SDK's sync ``MpsClient`` for this connection (built once, then reused)."""
        if self._client is None:
            settings, credential = self.settings, self.credential
            with self._lock:
                if self._client is None:
                    self._client = _mps_clients.build_client(settings, credential)
        return self._client

    def _client_with_timeout(self, timeout: float | None) -> Any:
        """The sync client, or for a request that must end sooner than ``request_timeout``, one of its own."""
        client = self.get_conn()
        settings = self.settings
        if timeout is None or timeout >= settings.request_timeout:
            return client
        shorter = dataclasses.replace(settings, request_timeout=timeout)
        return _mps_clients.build_client(shorter, self.credential)

    async def aget_conn(self) -> Any:
        """
        Return the SDK's async ``MpsClient`` for the running event loop.

        Shared by every hook of this process with the same settings on this loop
        (:mod:`~airflow_provider_mps.hooks._shared_async_clients`), built in a worker thread; the
        hook holds it until :meth:`aclose`.
        """
        loop = asyncio.get_running_loop()
        if self._async_client is not None and self._async_client_loop is loop:
            return self._async_client
        settings = await self._asettings()
        credential = await self._acredential()
        if self._async_client is not None and self._async_client_loop is loop:
            return self._async_client  # another coroutine of this hook got it meanwhile
        await self.aclose()  # a client of another (finished) loop cannot serve this one
        key, client = await _mps_clients.aacquire_async_client(settings, credential)
        if self._async_client is not None and self._async_client_loop is loop:
            _shared_async_clients.release(loop, key)  # acquired meanwhile: keep one use, not two
            return self._async_client
        self._async_client, self._async_client_loop, self._async_client_key = client, loop, key
        return client

    async def aclose(self) -> None:
        """Release the async client; close it if no other hook on its loop uses it."""
        client, loop, key = self._async_client, self._async_client_loop, self._async_client_key
        self._async_client = self._async_client_loop = self._async_client_key = None
        if client is not None and loop is not None:
            await _shared_async_clients.arelease(loop, key)

    # -- the one request path -----------------------------------------------------------------

    def _limiters(self, action: str, key: str) -> list[RateLimiter]:
        """The limiters a request of ``action`` waits at: the hook's own spacing, then the process's."""
        return _mps_requests.request_limiters(self._own_limiters, self.rate_limit, action, key)

    def _call(self, action: str, params: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Send one ``action`` request with the sync client and return the SDK's response."""
        client = self._client_with_timeout(timeout)
        return _mps_requests.send(client, action, params, lambda: self._limiters(action, self.rate_limit_key))

    async def _acall(self, action: str, params: Mapping[str, Any]) -> Any:
        """Send one ``action`` request with the async client; nothing here blocks the event loop."""
        client = await self.aget_conn()
        key = await self.arate_limit_key()  # from what aget_conn read: nothing is read here
        return await _mps_requests.asend(client, action, params, lambda: self._limiters(action, key))

    def retry_policy(
        self, action: str, *, deadline: float | None = None, label: str | None = None
    ) -> RetryPolicy:
        """
        The retry policy of ``action``: ``retry_limit`` retries of what :func:`classify` calls ``RETRY``.

        :param action: the API action.
        :param deadline: a ``time.monotonic()`` time no retry may end after, or ``None``.
        :param label: what the retry WARNING names, by default the action.
        """
        retryable: Callable[[MpsError], bool] = lambda error: classify(error, action) is Handling.RETRY  # noqa: E731
        return RetryPolicy(
            self.retry_limit, self.retry_delay, retryable, label or action, self.log, deadline=deadline
        )

    # -- API ----------------------------------------------------------------------------------

    def submit_request(self, params: Mapping[str, Any]) -> dict[str, str]:
        """
        Create an AIGC image task from checked parameters; return ``{"TaskId", "RequestId"}``.

        A create is not idempotent on the service: it is retried only when it certainly created
        nothing.  A failure that may have created a task is raised as it is; what to do about it is
        the caller's policy (:mod:`~airflow_provider_mps.core.possibly_created` for the operators).

        :param params: ``CreateAigcImageTask`` parameters under the API's names, as
            :func:`~airflow_provider_mps.validation.build_create_params` returns them.
        """
        result = call_with_retries(
            lambda timeout: parse_create_response(self._call(CREATE_ACTION, params, timeout=timeout)),
            self.retry_policy(CREATE_ACTION),
        )
        self.log.info("Created MPS AIGC image task %s (RequestId %s).", result["TaskId"], result["RequestId"])
        return result

    def submit_aigc_image_task(self, **fields: Any) -> dict[str, str]:
        """
        Check request fields, create an AIGC image task and return ``{"TaskId", "RequestId"}``.

        :param fields: the request fields in snake_case (``prompt``, ``model_name``,
            ``model_version``, ``scene_type``, ``negative_prompt``, ``enhance_prompt``,
            ``image_infos``, ``output_image_count``, ``extra_parameters``,
            ``additional_parameters``, ``store_cos_param``, ``operator``), checked by
            :func:`~airflow_provider_mps.validation.build_create_params`.
        :raises MpsInvalidParameterError: when a field breaks a rule (nothing is sent).
        """
        return self.submit_request(build_create_params(fields))

    def create_aigc_image_task(self, **fields: Any) -> str:
        """
        Create an AIGC image task and return its TaskId.

        :param fields: the keyword fields of :meth:`submit_aigc_image_task`.
        """
        return self.submit_aigc_image_task(**fields)["TaskId"]

    def describe_aigc_image_task(self, task_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """
        Return ``{"TaskId", "Status", "ImageUrls", "Message", "RequestId"}`` for an AIGC image task.

        Transient failures are retried up to ``retry_limit`` times with backoff.

        :param task_id: the MPS TaskId.
        :param deadline: a ``time.monotonic()`` time the call and its retries end by, or ``None``.
        """
        params = build_describe_params(task_id)
        return call_with_retries(
            lambda timeout: parse_describe_response(
                params["TaskId"], self._call(DESCRIBE_ACTION, params, timeout=timeout)
            ),
            self.retry_policy(DESCRIBE_ACTION, deadline=deadline),
        )

    async def adescribe_aigc_image_task(self, task_id: str) -> dict[str, Any]:
        """
        Async :meth:`describe_aigc_image_task`, through the SDK's async client.

        :param task_id: the MPS TaskId.
        """
        params = build_describe_params(task_id)

        async def attempt_once() -> dict[str, Any]:
            return parse_describe_response(params["TaskId"], await self._acall(DESCRIBE_ACTION, params))

        return await acall_with_retries(attempt_once, self.retry_policy(DESCRIBE_ACTION))

    def wait_for_aigc_image_task(
        self, task_id: str, *, poll_interval: float = 10, timeout: float | None = None
    ) -> dict[str, Any]:
        """
        Poll an AIGC image task until it ends and return its ``DONE`` describe dict.

        Runs :class:`~airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger` in this process:
        the provider's one wait loop, the same a deferred task runs in the triggerer.  Errors that
        :func:`~airflow_provider_mps.core.errors.classify` calls ``RETRY`` are retried until the
        timeout; a describe in flight when it passes is given up within
        :data:`~airflow_provider_mps.core.retry.MIN_REQUEST_TIMEOUT`.

        :param task_id: the MPS TaskId.
        :param poll_interval: seconds between two describe calls.
        :param timeout: seconds to wait in all, or ``None`` to wait as long as it takes.
        :raises MpsTaskFailedError: when the task ends in ``FAIL``.
        :raises MpsTaskTimeoutError: when ``timeout`` passes first.
        :raises MpsError: when a describe fails with an error that is not retried.
        """
        from airflow_provider_mps.triggers.mps import wait_in_process

        check_seconds("poll_interval", poll_interval)
        if timeout is not None:
            check_seconds("timeout", timeout, minimum=0)
        self.credential  # noqa: B018 - a bad connection fails here, as itself, not as a trigger event
        return wait_in_process(self, build_describe_params(task_id)["TaskId"], poll_interval, timeout)

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap read-only call (``DescribeTranscodeTemplates``, ``Limit=1``): (ok, message)."""
        endpoint = "the configured endpoint"
        try:
            endpoint = self.settings.endpoint
            result = parse_test_connection_response(self._call(TEST_CONNECTION_ACTION, {"Limit": 1}))
        except Exception as error:
            return False, f"Connection to MPS at {endpoint} failed: {error}"
        return True, f"Connection to MPS at {endpoint} succeeded (RequestId {result['RequestId']})."
