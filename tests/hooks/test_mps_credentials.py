"""
Credentials: the connection's keys and token, or the SDK's credential chain when it has none.

Every chain step is exercised for real and signs real requests to an emulator: environment
variables, the profile file under a temporary home, and the CVM role served by a metadata
service on loopback (the autouse ``isolated_credential_chain`` fixture points the SDK there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from airflow_provider_mps.exceptions import MpsApiError, MpsCredentialsError
from airflow_provider_mps.hooks.mps import MpsHook

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN_SECRET_ID = "AKIDTOKENUSER000000000000000000000000"
TOKEN_SECRET_KEY = "token-user-secret-key-0000000000"
SESSION_TOKEN = "session-token-7f3a9c1e5b2d4a6f8e0c"


@pytest.fixture(scope="module")
def token_emulator() -> Iterator[ThreadedEmulatorServer]:
    """An emulator whose one SecretId must present a session token (temporary credentials)."""
    server = ThreadedEmulatorServer(
        port=0, secret_id=TOKEN_SECRET_ID, secret_key=TOKEN_SECRET_KEY, token=SESSION_TOKEN
    )
    server.start()
    yield server
    server.stop()


def created_by(emulator: Any) -> list[str]:
    return [task["SecretId"] for task in emulator.tasks()]


def token_emulator_tasks(server: ThreadedEmulatorServer) -> list[dict[str, Any]]:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle

    return EmulatorHandle(server.endpoint, server.secret_id, server.secret_key, server.token).tasks()


@pytest.fixture
def role_keys(cvm_metadata_service):
    """The CVM role hands out the token user's temporary keys."""
    cvm_metadata_service.hand_out(TOKEN_SECRET_ID, TOKEN_SECRET_KEY, SESSION_TOKEN)
    return cvm_metadata_service


def chain_connection(set_connection, endpoint: str) -> str:
    return set_connection("mps_chain", extra={"endpoint": endpoint})


def test_connection_keys_and_token_sign_requests_for_temporary_credentials(set_connection, token_emulator):
    conn_id = set_connection(
        "mps_token",
        login=TOKEN_SECRET_ID,
        password=TOKEN_SECRET_KEY,
        extra={"endpoint": token_emulator.endpoint, "token": SESSION_TOKEN},
    )

    task_id = MpsHook(conn_id).create_aigc_image_task(prompt="p")

    [task] = [t for t in token_emulator_tasks(token_emulator) if t["TaskId"] == task_id]
    assert task["SecretId"] == TOKEN_SECRET_ID


def test_environment_variables_are_used_when_the_connection_has_no_keys(
    mps_emulator, set_connection, monkeypatch, hook_logs
):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", mps_emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", mps_emulator.secret_key)

    MpsHook(chain_connection(set_connection, mps_emulator.endpoint)).create_aigc_image_task(prompt="p")

    assert created_by(mps_emulator) == [mps_emulator.secret_id]
    assert hook_logs[0]["event"] == (
        "Using Tencent Cloud credentials from environment variables TENCENTCLOUD_SECRET_ID/SECRET_KEY "
        f"for MPS at {mps_emulator.endpoint} (region ap-guangzhou)."
    )


def test_profile_file_is_used_when_environment_variables_are_absent(
    mps_emulator, set_connection, isolated_credential_chain, hook_logs
):
    profile = isolated_credential_chain / ".tencentcloud" / "credentials"
    profile.parent.mkdir()
    profile.write_text(
        f"[default]\nsecret_id = {mps_emulator.secret_id}\nsecret_key = {mps_emulator.secret_key}\n"
    )

    MpsHook(chain_connection(set_connection, mps_emulator.endpoint)).create_aigc_image_task(prompt="p")

    assert created_by(mps_emulator) == [mps_emulator.secret_id]
    assert hook_logs[0]["event"].startswith(
        "Using Tencent Cloud credentials from profile file [default] section"
    )


def test_cvm_role_credentials_are_used_when_no_keys_are_configured(
    token_emulator, set_connection, role_keys, hook_logs
):
    hook = MpsHook(chain_connection(set_connection, token_emulator.endpoint))

    task_id = hook.create_aigc_image_task(prompt="p")

    [task] = [t for t in token_emulator_tasks(token_emulator) if t["TaskId"] == task_id]
    assert task["SecretId"] == TOKEN_SECRET_ID
    assert hook_logs[0]["event"].startswith(
        "Using Tencent Cloud credentials from CVM role 'mps-airflow-role'"
    )
    # The role, not its temporary SecretId (which changes at every refresh), names the account.
    assert hook.rate_limit_key == f"CVM role 'mps-airflow-role'@{token_emulator.endpoint}"


def test_no_credentials_anywhere_raises_an_error_saying_what_was_tried(set_connection, mps_emulator):
    from tencentcloud.common.credential import CVMRoleCredential

    hook = MpsHook(chain_connection(set_connection, mps_emulator.endpoint))

    with pytest.raises(MpsCredentialsError) as raised:
        hook.create_aigc_image_task(prompt="p")

    message = str(raised.value)
    metadata = CVMRoleCredential._role_endpoint
    # Retryable: the chain may find credentials on a later try (a CVM metadata hiccup passes).
    assert type(raised.value) is MpsCredentialsError
    assert message.startswith(
        "No Tencent Cloud credentials found for connection 'mps_chain': it has no SecretId (login) and "
        "SecretKey (password), and the Tencent Cloud credential chain found none (environment variables "
        "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not both set; no profile file with "
        "secret_id and secret_key in its [default] section at ~/.tencentcloud/credentials or "
        f"/etc/tencentcloud/credentials; no CVM role: the instance metadata service at {metadata} did not "
        "answer ("
    )
    assert message.endswith(
        "); no TKE OIDC role: TKE_REGION is not set). Set login and password on the connection, or "
        "provide credentials in one of those places."
    )
    assert mps_emulator.requests() == []


def test_partial_tke_setup_is_named_in_the_error(set_connection, mps_emulator, monkeypatch):
    monkeypatch.setenv("TKE_REGION", "ap-guangzhou")
    hook = MpsHook(chain_connection(set_connection, mps_emulator.endpoint))

    with pytest.raises(MpsCredentialsError) as raised:
        hook.get_conn()

    assert str(raised.value).endswith(
        "; no TKE OIDC role: TKE_PROVIDER_ID not exist). Set login and password on the connection, or "
        "provide credentials in one of those places."
    )


def test_only_one_of_the_environment_variables_does_not_count(set_connection, mps_emulator, monkeypatch):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", mps_emulator.secret_id)

    with pytest.raises(MpsCredentialsError):
        MpsHook(chain_connection(set_connection, mps_emulator.endpoint)).get_conn()


def test_wrong_token_is_refused_by_the_service_with_token_failure(set_connection, token_emulator):
    conn_id = set_connection(
        "mps_bad_token",
        login=TOKEN_SECRET_ID,
        password=TOKEN_SECRET_KEY,
        extra={"endpoint": token_emulator.endpoint, "token": "not-the-session-token"},
    )

    with pytest.raises(MpsApiError) as raised:
        MpsHook(conn_id, retry_limit=0).describe_aigc_image_task("1-AigcImage-x")

    assert (raised.value.code, raised.value.transient) == ("AuthFailure.TokenFailure", False)
