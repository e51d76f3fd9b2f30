"""
The pieces :class:`~airflow_provider_mps.hooks.mps.MpsHook` builds its SDK clients from.

Plain functions: the hook holds the state (the connection read once, the credential, the clients)
and calls these to build them and to mask their secrets; it sends through
:mod:`~airflow_provider_mps.hooks._mps_requests`.  Nothing here keeps state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_mps.hooks import _shared_async_clients
from airflow_provider_mps.hooks._mps_connection import build_client_profile
from airflow_provider_mps.hooks._sdk_logging import guard_sdk_logger
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable

    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential


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
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)


def mask_secrets(secrets: Iterable[str]) -> None:
    """Register each of ``secrets`` with Airflow's secrets masker."""
    for secret in secrets:
        mask_secret(secret)


async def amask_secrets(secrets: Iterable[str]) -> None:
    """Async :func:`mask_secrets`, one :func:`amask_secret` after another."""
    for secret in secrets:
        await amask_secret(secret)


def rate_limit_key(credential: ResolvedCredential, settings: MpsConnectionSettings) -> str:
    """A non-secret key naming the account and endpoint: ``<SecretId>@<endpoint>`` (or the role)."""
    return f"{credential.account_key}@{settings.endpoint}"


def build_client(settings: MpsConnectionSettings, credential: ResolvedCredential) -> Any:
    """Build the SDK's sync ``MpsClient``."""
    from tencentcloud.mps.v20190612.mps_client import MpsClient

    guard_sdk_logger()
    return MpsClient(credential.credential, settings.region, build_client_profile(settings))


def build_async_client(
    settings: MpsConnectionSettings, credential: ResolvedCredential, unused: list[Any]
) -> Any:
    """
    Build the SDK's async ``MpsClient`` (in a worker thread: it loads the CA bundle into an SSL context).

    :param unused: collects HTTP clients built and replaced here, for the caller to close on its loop.
    """
    import httpx
    from tencentcloud.mps.v20190612.mps_client_async import MpsClient

    guard_sdk_logger()
    client = MpsClient(
        credential.credential, settings.region, build_client_profile(settings, with_proxy=False)
    )
    if settings.proxy:
        # httpx 0.28 dropped the ``proxies`` argument the SDK passes to httpx, and the SDK has no
        # public setting for a proxy of its async client: its ``http_client`` attribute is the one
        # place to give it one.
        unused.append(client.http_client)
        client.http_client = httpx.AsyncClient(timeout=settings.request_timeout, proxy=settings.proxy)
    return client


async def aacquire_async_client(
    settings: MpsConnectionSettings, credential: ResolvedCredential
) -> tuple[Hashable, Any]:
    """
    Acquire the shared async client of ``settings`` and ``credential`` on the running loop.

    Built by :func:`build_async_client` in a worker thread if the loop has none
    (:func:`~airflow_provider_mps.hooks._shared_async_clients.acquire`); HTTP clients that the
    build replaced are closed here, on the loop.

    :return: the client's key, to release it with, and the client.
    """
    key = _shared_async_clients.client_key(settings, credential)
    unused: list[Any] = []
    client = await _shared_async_clients.acquire(
        key, lambda: build_async_client(settings, credential, unused)
    )
    for http_client in unused:
        await http_client.aclose()
    return key, client
