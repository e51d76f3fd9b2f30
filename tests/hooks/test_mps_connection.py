"""The ``tencentcloud_mps`` connection: extras, defaults, validation and the SDK profile built from it."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.exceptions import (
    MpsConnectionConfigError,
    MpsCredentialsError,
    MpsInvalidParameterError,
    MpsNetworkError,
)
from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
from airflow_provider_mps.hooks.mps import MpsHook
from tests.hooks.conftest import describe_with
from tests.hooks.test_mps_connection_form import HOOK_BEHAVIOUR

KEYS = {"login": "AKIDEXAMPLE", "password": "example-secret-key"}


def test_connection_with_only_keys_gets_the_public_endpoint_defaults(set_connection):
    hook = MpsHook(set_connection("mps_plain", **KEYS))

    assert hook.settings == MpsConnectionSettings(
        conn_id="mps_plain",
        secret_id="AKIDEXAMPLE",
        secret_key="example-secret-key",
        token=None,
        region="ap-guangzhou",
        endpoint="https://mps.tencentcloudapi.com",
        request_timeout=60.0,
        proxy=None,
        language="en-US",
    )


def test_sdk_client_profile_is_built_from_the_connection_without_network(set_connection):
    conn_id = set_connection(
        "mps_full",
        **KEYS,
        extra={
            "region": "na-siliconvalley",
            "endpoint": "http://127.0.0.1:9100/",
            "request_timeout": "12.5",
            "language": "zh-CN",
            "proxy": "http://user:proxy-password@127.0.0.1:3128",
        },
    )

    client = MpsHook(conn_id).get_conn()

    http = client.profile.httpProfile
    assert (client.region, client.profile.language, client.profile.signMethod) == (
        "na-siliconvalley",
        "zh-CN",
        "TC3-HMAC-SHA256",
    )
    assert (http.scheme, http.endpoint, http.reqTimeout, http.keepAlive, http.proxy) == (
        "http",
        "127.0.0.1:9100",
        12.5,
        True,
        "http://user:proxy-password@127.0.0.1:3128",
    )
    assert (client.profile.retryer, client.profile.disable_region_breaker) == (None, True)


def test_extras_saved_with_the_old_prefixed_names_are_read(set_connection):
    conn_id = set_connection(
        "mps_prefixed", **KEYS, extra={"extra__tencentcloud_mps__region": "ap-shanghai-fsi"}
    )

    assert MpsHook(conn_id).settings.region == "ap-shanghai-fsi"


def test_empty_form_fields_mean_the_defaults(set_connection):
    conn_id = set_connection(
        "mps_blank", **KEYS, extra={"region": "", "endpoint": "", "request_timeout": "", "token": ""}
    )

    settings = MpsHook(conn_id).settings

    assert (settings.region, settings.endpoint, settings.request_timeout, settings.token) == (
        "ap-guangzhou",
        "https://mps.tencentcloudapi.com",
        60.0,
        None,
    )


def test_async_path_reads_the_same_settings(set_connection):
    conn_id = set_connection("mps_async", **KEYS, extra={"region": "ap-beijing"})
    sync_settings = MpsHook(conn_id).settings

    async_settings = asyncio.run(MpsHook(conn_id)._asettings())

    assert async_settings == sync_settings


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"endpoint": "mps.tencentcloudapi.com"},
            "Invalid extra 'endpoint' of connection 'mps_bad' 'mps.tencentcloudapi.com': must be a full "
            "http:// or https:// URL with a host and no path, query or credentials, such as "
            "https://mps.tencentcloudapi.com or http://127.0.0.1:9100 for the local emulator.",
        ),
        (
            {"endpoint": "https://mps.tencentcloudapi.com/v3"},
            "Invalid extra 'endpoint' of connection 'mps_bad' 'https://mps.tencentcloudapi.com/v3': must be "
            "a full http:// or https:// URL with a host and no path, query or credentials, such as "
            "https://mps.tencentcloudapi.com or http://127.0.0.1:9100 for the local emulator.",
        ),
        (
            {"endpoint": "http://127.0.0.1:99999"},
            "Invalid extra 'endpoint' of connection 'mps_bad' 'http://127.0.0.1:99999': must be a full "
            "http:// or https:// URL with a host and no path, query or credentials, such as "
            "https://mps.tencentcloudapi.com or http://127.0.0.1:9100 for the local emulator.",
        ),
        (
            {"region": "Guangzhou"},
            "Invalid extra 'region' of connection 'mps_bad' 'Guangzhou': must be a Tencent Cloud region "
            "name in lower case, such as ap-guangzhou, na-siliconvalley or ap-shanghai-fsi.",
        ),
        (
            {"request_timeout": "soon"},
            "Invalid extra 'request_timeout' of connection 'mps_bad' 'soon': must be a number of seconds "
            "greater than 0, such as 60.",
        ),
        (
            {"request_timeout": 0},
            "Invalid extra 'request_timeout' of connection 'mps_bad' 0: must be a number of seconds "
            "greater than 0, such as 60.",
        ),
        (
            {"language": "fr-FR"},
            "Invalid extra 'language' of connection 'mps_bad' 'fr-FR': must be en-US or zh-CN.",
        ),
        (
            {"proxy": "proxy-without-scheme:3128"},
            "Invalid extra 'proxy' of connection 'mps_bad' '<redacted>': must be a proxy URL with a scheme "
            "and a host, such as http://proxy.example.com:3128.",
        ),
    ],
)
def test_invalid_extra_is_refused_naming_the_field_and_the_rule(set_connection, extra, message):
    hook = MpsHook(set_connection("mps_bad", **KEYS, extra=extra))

    with pytest.raises(MpsInvalidParameterError) as raised:
        hook.get_conn()

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("https://user:s3cret-pass@mps.tencentcloudapi.com", "https://***@mps.tencentcloudapi.com"),
        ("https://user:s3cret-pass@mps.tencentcloudapi.com/v3", "https://***@mps.tencentcloudapi.com/v3"),
        ("http://user:s3cret-pass@127.0.0.1:99999", "http://***@127.0.0.1:99999"),
        ("https://s3cret-pass@mps.tencentcloudapi.com", "https://***@mps.tencentcloudapi.com"),
    ],
)
def test_an_endpoint_with_credentials_is_refused_without_showing_them(set_connection, endpoint, shown):
    # Finding 8 of issue 11: the whole URL, password included, used to be echoed in the error.
    hook = MpsHook(set_connection("mps_bad", **KEYS, extra={"endpoint": endpoint}))

    with pytest.raises(MpsInvalidParameterError) as raised:
        hook.get_conn()
    ok, message = hook.test_connection()

    assert str(raised.value) == (
        f"Invalid extra 'endpoint' of connection 'mps_bad' {shown!r}: must be a full http:// or https:// "
        "URL with a host and no path, query or credentials, such as https://mps.tencentcloudapi.com or "
        "http://127.0.0.1:9100 for the local emulator."
    )
    assert (ok, message) == (False, f"Connection to MPS at the configured endpoint failed: {raised.value}")
    assert "s3cret-pass" not in repr(raised.value) + repr(raised.value.value) + message


def test_invalid_region_argument_is_refused(set_connection):
    hook = MpsHook(set_connection("mps_ok", **KEYS), region="ap guangzhou")

    with pytest.raises(MpsInvalidParameterError) as raised:
        hook.get_conn()

    assert str(raised.value) == (
        "Invalid region 'ap guangzhou': must be a Tencent Cloud region name in lower case, such as "
        "ap-guangzhou, na-siliconvalley or ap-shanghai-fsi."
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"login": "AKIDEXAMPLE"},
            "Connection 'mps_keys' has a SecretId (login) but no SecretKey (password); set both, or "
            "neither to use the Tencent Cloud credential chain.",
        ),
        (
            {"password": "example-secret-key"},
            "Connection 'mps_keys' has a SecretKey (password) but no SecretId (login); set both, or "
            "neither to use the Tencent Cloud credential chain.",
        ),
        (
            {"extra": {"token": "session-token-value"}},
            "Connection 'mps_keys' has a token extra but no SecretId (login) and SecretKey (password); a "
            "token is only valid together with the temporary SecretId and SecretKey it was issued with.",
        ),
        (
            {"login": "AKIDEXAMPLE ", "password": "example-secret-key"},
            "The SecretId (login) of connection 'mps_keys' contains whitespace; paste it again without "
            "spaces or line breaks.",
        ),
    ],
)
def test_incomplete_credentials_are_refused_with_a_clear_error(set_connection, fields, message):
    hook = MpsHook(set_connection("mps_keys", **fields))

    with pytest.raises(MpsCredentialsError) as raised:
        hook.get_conn()

    # A configuration mistake fails the task at once: no retry can fix the connection.
    assert (type(raised.value), str(raised.value)) == (MpsConnectionConfigError, message)
    assert isinstance(raised.value, AirflowFailException)
    assert "session-token-value" not in str(raised.value)
    assert "example-secret-key" not in str(raised.value)


def test_unknown_extras_are_reported_as_a_warning(set_connection, hook_logs):
    conn_id = set_connection("mps_typo", **KEYS, extra={"regoin": "ap-beijing", "region": "ap-beijing"})

    MpsHook(conn_id).get_conn()

    assert [log["event"] for log in hook_logs if log["log_level"] == "warning"] == [
        "Connection mps_typo has extras regoin that a tencentcloud_mps connection does not read; the "
        "known extras are region, endpoint, token, request_timeout, proxy, language, image_budget."
    ]


def test_settings_repr_never_shows_secrets(set_connection):
    conn_id = set_connection(
        "mps_repr",
        **KEYS,
        extra={"token": "session-token-value", "proxy": "http://u:proxy-password@127.0.0.1:3128"},
    )

    shown = repr(MpsHook(conn_id).settings)

    assert shown == (
        "MpsConnectionSettings(conn_id='mps_repr', secret_id='AKIDEXAMPLE', region='ap-guangzhou', "
        "endpoint='https://mps.tencentcloudapi.com', request_timeout=60.0, language='en-US')"
    )


def test_ui_field_behaviour_relabels_login_and_password_and_hides_unused_fields():
    assert MpsHook.get_ui_field_behaviour() == HOOK_BEHAVIOUR


@pytest.mark.parametrize(
    ("client", "request_line"),
    [("sync", b"POST http://127.0.0.1:9/ HTTP/1.1"), ("async", b"POST http://127.0.0.1:9/? HTTP/1.1")],
)
def test_proxy_extra_routes_both_clients_through_the_proxy(
    client, request_line, set_connection, loopback_server
):
    proxy = loopback_server("record")
    extra = {"endpoint": "http://127.0.0.1:9", "proxy": proxy.endpoint}
    hook = MpsHook(set_connection("mps_proxied", **KEYS, extra=extra), retry_limit=0)

    with pytest.raises(MpsNetworkError):
        describe_with(hook, client, "1-AigcImage-x")

    [request] = proxy.received
    assert request.split(b"\r\n")[0] == request_line
