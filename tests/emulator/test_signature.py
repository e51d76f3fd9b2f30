"""TC3-HMAC-SHA256 verification: known-answer vectors and every AuthFailure code."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from tencentcloud.common.abstract_client import AbstractClient
from tencentcloud.common.abstract_client_async import AbstractClient as AsyncAbstractClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.http.request import RequestInternal

from airflow_provider_mps.emulator import signature
from airflow_provider_mps.emulator.exceptions import AuthFailureError
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.emulator.sdk import async_client, create, describe_request, sync_client
from tests.emulator.tc3 import signed_post, tc3_signature

# Known-answer vector: inputs fixed here, expected hex values computed once with the openssl
# command line from the published algorithm (not with Python, the emulator or the SDK).
KAT_SECRET_KEY = "mps-kat-secret-key"
KAT_TIMESTAMP = 1700000000  # 2023-11-14 UTC
KAT_HOST = "mps.tencentcloudapi.com"
KAT_BODY = '{"Prompt": "画一只猫", "ModelName": "GEM"}'.encode()  # raw UTF-8, not \u-escaped
KAT_PAYLOAD_SHA256 = "c2ff59bafb374a4fdfec082910896a4a92dd731380ea20392bad2d8004652098"
KAT_CANONICAL_SHA256 = "45dcfbd42ca21afe682710e37b420b0d97a38a80b94b7e3474fad5140af306bd"
KAT_SIGNATURE = "33990f5965bd1bf7170231c10a66d30c5840e6c89160d0bdb82ecd356bdaf17c"
# The same request signing X-TC-Action too, the way Tencent's documentation example does.
KAT_SIGNATURE_WITH_ACTION = "35e26c613dadf659cd5b1cc21baa833950981c9aa787d084d423876763d675d2"

# The intermediate hashes Tencent's "Signature v3" page prints for its DescribeInstances example.
DOC_BODY = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
DOC_PAYLOAD_SHA256 = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
DOC_CANONICAL_SHA256 = "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"


def kat_headers(content_type: str = "application/json") -> dict[str, str]:
    return {"content-type": content_type, "host": KAT_HOST, "x-tc-action": "CreateAigcImageTask"}


def test_known_answer_vector_matches_the_emulator():
    canonical = signature.canonical_request(
        method="POST",
        path="/",
        query="",
        headers=kat_headers(),
        signed_headers=("content-type", "host"),
        payload=KAT_BODY,
    )
    to_sign = signature.string_to_sign(str(KAT_TIMESTAMP), "2023-11-14", "mps", canonical)

    assert canonical.rsplit("\n", 1)[1] == KAT_PAYLOAD_SHA256
    assert to_sign.rsplit("\n", 1)[1] == KAT_CANONICAL_SHA256
    assert signature.sign(KAT_SECRET_KEY, "2023-11-14", "mps", to_sign) == KAT_SIGNATURE


def test_known_answer_vector_matches_the_sdk_sync_and_async_signers():
    request = RequestInternal(KAT_HOST, "POST", "/", data=KAT_BODY.decode())
    request.header.update(
        {"Content-Type": "application/json", "Host": KAT_HOST, "X-TC-Timestamp": str(KAT_TIMESTAMP)}
    )

    sync_signature = AbstractClient._get_tc3_signature(None, {}, request, "2023-11-14", "mps", KAT_SECRET_KEY)
    async_signature = AsyncAbstractClient._get_tc3_signature(
        "POST", "/", "", KAT_BODY, dict(request.header), "2023-11-14", "mps", KAT_SECRET_KEY, {}
    )

    assert (sync_signature, async_signature) == (KAT_SIGNATURE, KAT_SIGNATURE)


def test_known_answer_vector_matches_the_tests_own_signer():
    assert (
        tc3_signature(
            KAT_SECRET_KEY,
            KAT_TIMESTAMP,
            "mps",
            f"content-type:application/json\nhost:{KAT_HOST}\n",
            "content-type;host",
            KAT_BODY,
        )
        == KAT_SIGNATURE
    )


def verify_kat_request(headers: dict[str, str]) -> str:
    """Verify a POST of the known-answer body with ``headers``, 10 s after it was signed, as ``AKIDkat``."""
    return signature.verify_request(
        method="POST",
        path="/",
        query="",
        headers=headers,
        body=KAT_BODY,
        secret_key_for={"AKIDkat": KAT_SECRET_KEY}.get,
        token_for=lambda _: None,
        now=KAT_TIMESTAMP + 10,
    )


def test_verification_follows_the_received_signed_headers():
    authorization = (
        "TC3-HMAC-SHA256 Credential=AKIDkat/2023-11-14/mps/tc3_request, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={KAT_SIGNATURE_WITH_ACTION}"
    )
    headers = {
        **kat_headers("application/json; charset=utf-8"),
        "authorization": authorization,
        "x-tc-timestamp": str(KAT_TIMESTAMP),
    }

    secret_id = verify_kat_request(headers)

    assert secret_id == "AKIDkat"


# Tencent's Node.js SDK signs `host` as `URL.hostname` (no port) but sends `URL.host` (with it).
SENT_HOST = "mps.emulator.localhost:54321"


def verify_with_host(
    signed_host: str, *, sent_host: str = SENT_HOST, secret_key: str = KAT_SECRET_KEY
) -> str:
    signed = tc3_signature(
        secret_key,
        KAT_TIMESTAMP,
        "mps",
        f"content-type:application/json\nhost:{signed_host}\n",
        "content-type;host",
        KAT_BODY,
    )
    headers = {
        "content-type": "application/json",
        "host": sent_host,
        "x-tc-timestamp": str(KAT_TIMESTAMP),
        "authorization": "TC3-HMAC-SHA256 Credential=AKIDkat/2023-11-14/mps/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signed}",
    }
    return verify_kat_request(headers)


@pytest.mark.parametrize(
    "signed_host", [SENT_HOST, "mps.emulator.localhost"], ids=["with-port", "without-port"]
)
def test_host_signed_with_or_without_its_port_passes(signed_host):
    assert verify_with_host(signed_host) == "AKIDkat"


@pytest.mark.parametrize(
    ("signed_host", "sent_host", "secret_key"),
    [
        ("mps.emulator.localhost", SENT_HOST, "not-the-key"),
        ("mps.emulator.localhost:9100", SENT_HOST, KAT_SECRET_KEY),
        ("mps.other.localhost", SENT_HOST, KAT_SECRET_KEY),
        ("mps.emulator", SENT_HOST, KAT_SECRET_KEY),
        (SENT_HOST, "mps.emulator.localhost", KAT_SECRET_KEY),
    ],
    ids=["portless-wrong-key", "other-port", "other-name", "name-cut-short", "port-not-sent"],
)
def test_host_signed_as_anything_but_the_sent_host_or_its_name_is_signature_failure(
    signed_host, sent_host, secret_key
):
    with pytest.raises(AuthFailureError) as info:
        verify_with_host(signed_host, sent_host=sent_host, secret_key=secret_key)

    assert info.value.code == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize(
    ("host", "forms"),
    [
        ("127.0.0.1:9100", ("127.0.0.1:9100", "127.0.0.1")),
        ("mps.emulator.localhost:80", ("mps.emulator.localhost:80", "mps.emulator.localhost")),
        ("[::1]:9100", ("[::1]:9100", "[::1]")),
        ("mps.tencentcloudapi.com", ("mps.tencentcloudapi.com",)),
        ("[::1]", ("[::1]",)),
        ("::1", ("::1",)),
        ("127.0.0.1:", ("127.0.0.1:",)),
        ("", ("",)),
    ],
)
def test_host_forms_are_the_sent_host_then_its_name_without_the_port(host, forms):
    assert signature.host_forms(host) == forms


def test_documented_example_intermediate_hashes():
    canonical = signature.canonical_request(
        method="POST",
        path="/",
        query="",
        headers={
            "content-type": "application/json; charset=utf-8",
            "host": "cvm.tencentcloudapi.com",
            "x-tc-action": "DescribeInstances",
        },
        signed_headers=("content-type", "host", "x-tc-action"),
        payload=DOC_BODY,
    )
    to_sign = signature.string_to_sign("1551113065", "2019-02-25", "cvm", canonical)

    assert canonical.rsplit("\n", 1)[1] == DOC_PAYLOAD_SHA256
    assert to_sign == (f"TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n{DOC_CANONICAL_SHA256}")


def sdk_error(call) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value.code, info.value.message


def test_sdk_signed_request_with_the_right_key_passes(mps_emulator):
    task_id = create(sync_client(mps_emulator), Prompt="a cat")

    assert [t["TaskId"] for t in mps_emulator.tasks()] == [task_id]


def test_wrong_secret_key_is_signature_failure(mps_emulator):
    client = sync_client(mps_emulator, secret_key="not-the-key")

    assert sdk_error(lambda: create(client, Prompt="a cat")) == (
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated; check that the signature, the signed headers, "
        "the body and the credential date (the UTC date of X-TC-Timestamp) are correct.",
    )
    assert mps_emulator.tasks() == []


def test_unknown_secret_id_is_secret_id_not_found(mps_emulator):
    client = sync_client(mps_emulator, secret_id="AKIDunknown")

    assert sdk_error(lambda: create(client, Prompt="a cat")) == (
        "AuthFailure.SecretIdNotFound",
        "The SecretId `AKIDunknown` is not found; check that it is correct.",
    )


def test_sdk_request_against_a_clock_off_by_more_than_300_seconds_is_signature_expire(mps_emulator):
    mps_emulator.configure(clock_offset_seconds=-301)

    code, message = sdk_error(lambda: create(sync_client(mps_emulator), Prompt="a cat"))

    assert code == "AuthFailure.SignatureExpire"
    assert re.fullmatch(
        r"Signature expired: timestamp \d+ is more than 300 seconds away from the server time \d+\.", message
    )


def test_stale_timestamp_is_signature_expire_and_a_fresh_one_within_300_seconds_passes(mps_emulator):
    body = json.dumps({"TaskId": "1-AigcImage-missing"}).encode()
    stale = int(time.time()) - 400
    credentials = {"secret_id": mps_emulator.secret_id, "secret_key": mps_emulator.secret_key}

    stale_response = signed_post(
        mps_emulator.endpoint, "DescribeAigcImageTask", body, timestamp=stale, **credentials
    )
    fresh_response = signed_post(
        mps_emulator.endpoint, "DescribeAigcImageTask", body, timestamp=int(time.time()) - 200, **credentials
    )

    assert stale_response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"
    assert fresh_response.json()["Response"]["Error"]["Code"] == "ResourceNotFound.TaskNotFound"


@pytest.mark.asyncio
async def test_tampered_body_is_signature_failure(mps_emulator):
    client = async_client(mps_emulator)
    signed = client._build_req("CreateAigcImageTask", {"Prompt": "a cat"}, {}, {})
    tampered = signed.content.replace(b"a cat", b"a dog")

    response = httpx.post(str(signed.url), content=tampered, headers=dict(signed.headers), timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert mps_emulator.tasks() == []


def test_raw_utf8_body_is_verified_over_its_bytes(mps_emulator):
    body = '{"Prompt": "画一只猫，水墨风格"}'.encode()

    response = signed_post(
        mps_emulator.endpoint,
        "CreateAigcImageTask",
        body,
        secret_id=mps_emulator.secret_id,
        secret_key=mps_emulator.secret_key,
        sign_action=True,
    )

    assert list(response.json()["Response"]) == ["TaskId", "RequestId"]
    assert [t["Request"] for t in mps_emulator.tasks()] == [{"Prompt": "画一只猫，水墨风格"}]


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "The Authorization header is missing."),
        ("SKIP", "The Authorization header must use the TC3-HMAC-SHA256 algorithm, not `SKIP`."),
        (
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-01/mps/tc3_request, SignedHeaders=content-type;host",
            "The Authorization header must have the form `TC3-HMAC-SHA256 Credential=<SecretId>/<date>/"
            "<service>/tc3_request, SignedHeaders=<headers>, Signature=<64 hex digits>`.",
        ),
        (
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-01/mps/tc3_request, SignedHeaders=host, Signature="
            + "0" * 64,
            "SignedHeaders must include content-type and host; `host` lacks content-type.",
        ),
        (
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-01/cvm/tc3_request, SignedHeaders=content-type;host, "
            "Signature=" + "0" * 64,
            "The credential scope names service `cvm`, but this endpoint serves `mps`.",
        ),
    ],
    ids=["missing", "not-tc3", "no-signature", "host-only", "other-service"],
)
def test_missing_or_malformed_authorization_is_invalid_authorization(mps_emulator, authorization, message):
    headers = {"Content-Type": "application/json", "X-TC-Action": "DescribeAigcImageTask"}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = httpx.post(mps_emulator.endpoint + "/", content=b"{}", headers=headers, timeout=10)

    error = response.json()["Response"]["Error"]
    assert error == {"Code": "AuthFailure.InvalidAuthorization", "Message": message}


@pytest.fixture(scope="module")
def token_emulator():
    with ThreadedEmulatorServer(token="session-token-1", wait_seconds=0.2, run_seconds=0.3) as server:
        yield server


def test_token_mismatch_is_token_failure_and_the_right_token_passes(token_emulator):
    def post(token):
        return signed_post(
            token_emulator.endpoint,
            "DescribeTranscodeTemplates",
            b'{"Limit": 1}',
            secret_id=token_emulator.secret_id,
            secret_key=token_emulator.secret_key,
            token=token,
        ).json()["Response"]

    assert post("wrong-token")["Error"] == {
        "Code": "AuthFailure.TokenFailure",
        "Message": "The token is missing, invalid or expired.",
    }
    assert post(None)["Error"]["Code"] == "AuthFailure.TokenFailure"
    right = post("session-token-1")
    assert right == {"TotalCount": 0, "TranscodeTemplateSet": [], "RequestId": right["RequestId"]}


def test_sdk_with_a_token_the_account_does_not_take_is_token_failure(mps_emulator):
    client = sync_client(mps_emulator, token="unexpected-token")

    assert sdk_error(lambda: client.DescribeAigcImageTask(describe_request("1-AigcImage-x"))) == (
        "AuthFailure.TokenFailure",
        "The request carries a token, but this SecretId takes none.",
    )
