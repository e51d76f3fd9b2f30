"""
The pieces :class:`~airflow_provider_mps.hooks.mps.MpsHook` builds its SDK clients and requests from.

Plain functions: the hook holds the state (the connection read once, the credential, the clients)
and calls these to build and send.  Nothing here keeps state of its own.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.exceptions import MpsNetworkError
from airflow_provider_mps.hooks._mps_connection import build_client_profile
from airflow_provider_mps.hooks._sdk_logging import guard_sdk_logger
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential, RoleKeys


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


async def arefresh_role_keys(keys: RoleKeys, action: str) -> list[str]:
    """:func:`refresh_role_keys` in a worker thread: the refresh may call the metadata service or STS."""
    return await asyncio.to_thread(refresh_role_keys, keys, action)
