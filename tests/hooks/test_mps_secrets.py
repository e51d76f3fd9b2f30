"""The SecretKey and session token never reach a log line, an exception or a repr."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets

import pytest

from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from airflow_provider_mps.exceptions import MpsApiError
from airflow_provider_mps.hooks._sdk_logging import SDK_LOGGER_NAME, redact
from airflow_provider_mps.hooks.mps import MpsHook
from tests.hooks.conftest import describe_with

SECRET_ID = "AKIDSECRETSTEST00000000000000000000000"
SECRET_KEY = "secrets-test-key-" + secrets.token_hex(8)
TOKEN = "secrets-test-token-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def token_emulator():
    server = ThreadedEmulatorServer(port=0, secret_id=SECRET_ID, secret_key=SECRET_KEY, token=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sdk_debug_log():
    """Turn the SDK's debug logger on with the user's own handler, as ``set_stream_logger`` does."""
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    level = sdk_logger.level
    sdk_logger.setLevel(logging.DEBUG)
    sdk_logger.addHandler(handler)
    yield stream
    sdk_logger.removeHandler(handler)
    sdk_logger.setLevel(level)


def token_connection(set_connection, endpoint: str, token: str = TOKEN, key: str = SECRET_KEY) -> str:
    return set_connection(
        "mps_secret", login=SECRET_ID, password=key, extra={"endpoint": endpoint, "token": token}
    )


def test_sdk_debug_log_of_both_clients_shows_no_key_or_token(
    token_emulator, set_connection, sdk_debug_log, caplog, hook_logs
):
    caplog.set_level(logging.DEBUG, logger=SDK_LOGGER_NAME)
    hook = MpsHook(token_connection(set_connection, token_emulator.endpoint))

    task_id = hook.create_aigc_image_task(prompt="p")
    hook.describe_aigc_image_task(task_id)

    async def describe_async():
        try:
            await hook.adescribe_aigc_image_task(task_id)
        finally:
            await hook.aclose()

    asyncio.run(describe_async())

    logged = sdk_debug_log.getvalue() + caplog.text + repr(hook_logs)
    assert "SendRequest" in sdk_debug_log.getvalue()  # the SDK did dump its requests
    assert len(re.findall(r"(?i)x-tc-token: \*\*\*", sdk_debug_log.getvalue())) == 3
    assert len(re.findall(r"(?i)authorization: \*\*\*", sdk_debug_log.getvalue())) == 3
    assert (TOKEN in logged, SECRET_KEY in logged) == (False, False)


def test_failed_calls_show_no_key_or_token(token_emulator, set_connection, sdk_debug_log, hook_logs):
    wrong_key = "wrong-key-" + secrets.token_hex(8)
    conn_id = token_connection(set_connection, token_emulator.endpoint, key=wrong_key)

    with pytest.raises(MpsApiError) as raised:
        MpsHook(conn_id, retry_limit=0).create_aigc_image_task(prompt="p")

    shown = str(raised.value) + repr(raised.value) + sdk_debug_log.getvalue() + repr(hook_logs)
    assert raised.value.code == "AuthFailure.SignatureFailure"
    assert (TOKEN in shown, wrong_key in shown) == (False, False)


def test_keys_found_by_the_credential_chain_are_registered_with_airflows_secrets_masker(
    mps_emulator, set_connection, monkeypatch
):
    from airflow.providers.common.compat.sdk import redact as airflow_redact

    env_key = mps_emulator.secret_key
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", mps_emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", env_key)

    MpsHook(set_connection("mps_chain_mask", extra={"endpoint": mps_emulator.endpoint})).get_conn()

    assert airflow_redact(f"key={env_key}") == "key=***"


def test_connection_token_is_registered_with_airflows_secrets_masker(token_emulator, set_connection):
    from airflow.providers.common.compat.sdk import redact as airflow_redact

    token = "registered-token-" + secrets.token_hex(8)
    MpsHook(token_connection(set_connection, token_emulator.endpoint, token=token)).get_conn()

    assert airflow_redact(f"t {token} t") == "t *** t"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_roles_refreshed_keys_are_registered_with_the_masker_when_they_change(
    token_emulator, set_connection, cvm_metadata_service, path
):
    # Finding 8 of issue 11: only the keys of the first refresh were registered.  Keys that expire
    # within five minutes are refreshed before every request.
    from airflow.providers.common.compat.sdk import redact as airflow_redact

    cvm_metadata_service.hand_out(SECRET_ID, SECRET_KEY, TOKEN, expires_in=60)
    hook = MpsHook(
        set_connection("mps_role_mask", extra={"endpoint": token_emulator.endpoint}), retry_limit=0
    )
    new_key, new_token = (
        f"{name}-{path}-{secrets.token_hex(8)}" for name in ("refreshed-key", "refreshed-token")
    )

    with pytest.raises(MpsApiError) as before:
        describe_with(hook, path, "1-AigcImage-unknown")
    cvm_metadata_service.hand_out(SECRET_ID, new_key, new_token, expires_in=60)
    with pytest.raises(MpsApiError) as after:
        describe_with(hook, path, "1-AigcImage-unknown")

    # The first describe was signed with the first keys; the second with the refreshed ones (which
    # this emulator does not know), so the role was asked again before it.
    assert (before.value.code, after.value.code) == (
        "ResourceNotFound.TaskNotFound",
        "AuthFailure.SignatureFailure",
    )
    assert airflow_redact(f"{new_key} {new_token}") == "*** ***"


def test_redact_masks_credential_headers_and_query_parameters():
    dump = (
        "Header: Authorization: TC3-HMAC-SHA256 Credential=AKID/2026-01-01/mps/tc3_request, Signature=ab\n"
        "X-TC-Token: abc.def\nx-tc-token:ghi\nContent-Type: application/json\n"
        "Data: Token=tok123&SecretKey=key456&Signature=sig789&Action=Describe"
    )

    assert redact(dump) == (
        "Header: Authorization: ***\nX-TC-Token: ***\nx-tc-token:***\nContent-Type: application/json\n"
        "Data: Token=***&SecretKey=***&Signature=***&Action=Describe"
    )


@pytest.mark.parametrize("path", ["sync", "async"])
def test_key_token_and_proxy_password_are_registered_with_the_masker_by_both_paths(
    set_connection, path, monkeypatch
):
    # The async path is the triggers': amask_secret on Airflow 3.3+, mask_secret in a worker thread
    # before; either way Airflow's masker (the one task and trigger logs go through) hides them.
    from airflow.providers.common.compat.sdk import redact as airflow_redact

    key, token, proxy_password = (
        f"{name}-{path}-{secrets.token_hex(8)}" for name in ("key", "token", "proxy")
    )
    hook = MpsHook(
        set_connection(
            f"mps_mask_{path}",
            login=SECRET_ID,
            password=key,
            extra={"token": token, "proxy": f"http://user:{proxy_password}@127.0.0.1:3128"},
        )
    )

    if path == "sync":
        hook.get_conn()
    else:

        async def build_async_client() -> None:
            try:
                await hook.aget_conn()
            finally:
                await hook.aclose()

        asyncio.run(build_async_client())

    assert airflow_redact(f"{key} {token} {proxy_password}") == "*** *** ***"
