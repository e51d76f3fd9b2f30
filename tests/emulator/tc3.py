"""A small TC3-HMAC-SHA256 signer written from Tencent's published algorithm, for hand-made requests.

Independent of both the emulator's ``signature`` module and the SDK, so tests can send requests
the SDK would never produce: stale timestamps, raw UTF-8 bodies, extra signed headers.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time

import httpx


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str, timestamp: int, service: str, canonical_headers: str, signed_headers: str, payload: bytes
) -> str:
    date = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()]
    )
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_post(
    endpoint: str,
    action: str,
    body: bytes,
    *,
    secret_id: str,
    secret_key: str,
    timestamp: int | None = None,
    token: str | None = None,
    sign_action: bool = False,
) -> httpx.Response:
    """POST ``body`` to the emulator as an API call signed with the given credentials."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    host = endpoint.removeprefix("http://")
    content_type = "application/json; charset=utf-8"
    canonical_headers = f"content-type:{content_type}\nhost:{host}\n"
    signed_headers = "content-type;host"
    if sign_action:
        canonical_headers += f"x-tc-action:{action.lower()}\n"
        signed_headers += ";x-tc-action"
    signature = tc3_signature(secret_key, timestamp, "mps", canonical_headers, signed_headers, body)
    date = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).strftime("%Y-%m-%d")
    headers = {
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": "2019-06-12",
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": "ap-guangzhou",
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/mps/tc3_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}",
    }
    if token is not None:
        headers["X-TC-Token"] = token
    return httpx.post(endpoint + "/", content=body, headers=headers, timeout=10)
