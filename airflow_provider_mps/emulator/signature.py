"""
TC3-HMAC-SHA256 request verification, as Tencent Cloud API 3.0 documents it.

The signature is recomputed from what was actually received: the raw body bytes (never a
re-serialised JSON document: ``json.dumps`` escapes non-ASCII, so re-encoding would change the
hash), the headers the client listed in ``SignedHeaders`` and the request path and query.

Official SDKs differ in two details the published algorithm leaves open, and each variant is
accepted: header values signed lower-cased or verbatim (Python signs them verbatim), and the
``host`` header signed as sent or without its port (Node.js signs ``URL.hostname`` but sends
``URL.host``, so on any port but the default the two differ).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_mps.emulator.exceptions import AuthFailureError, MissingParameterError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "mps"
#: Largest accepted difference, in seconds, between X-TC-Timestamp and the server clock.
MAX_CLOCK_SKEW_SECONDS = 300
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_CREDENTIAL = re.compile(r"^(?P<secret_id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_HOST_WITH_PORT = re.compile(r"^(?P<name>\[[^\]]*\]|[^:\[\]]*):\d+$")


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header of a TC3 request."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """
    Parse a ``TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header.

    :param value: the header value, or ``None`` when the header is absent.
    :raises AuthFailureError: ``AuthFailure.InvalidAuthorization`` when absent or malformed.
    """
    if not value:
        raise AuthFailureError("InvalidAuthorization", "The Authorization header is missing.")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailureError(
            "InvalidAuthorization",
            f"The Authorization header must use the {ALGORITHM} algorithm, not `{algorithm}`.",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, field_value = part.strip().partition("=")
        if sep:
            fields[key] = field_value.strip()
    credential = _CREDENTIAL.match(fields.get("Credential", ""))
    signed_headers = tuple(h for h in fields.get("SignedHeaders", "").split(";") if h)
    signature = fields.get("Signature", "")
    if credential is None or not signed_headers or not _SIGNATURE.match(signature):
        raise AuthFailureError(
            "InvalidAuthorization",
            "The Authorization header must have the form `TC3-HMAC-SHA256 Credential=<SecretId>/<date>/"
            "<service>/tc3_request, SignedHeaders=<headers>, Signature=<64 hex digits>`.",
        )
    return Authorization(
        secret_id=credential["secret_id"],
        date=credential["date"],
        service=credential["service"],
        signed_headers=signed_headers,
        signature=signature,
    )


def secret_id_of(value: str | None) -> str | None:
    """Return the SecretId named by an Authorization header, or ``None`` if it names none."""
    try:
        return parse_authorization(value).secret_id
    except AuthFailureError:
        return None


def host_forms(host: str) -> tuple[str, ...]:
    """
    Return the ``host`` header values a client may have signed for a request sent with ``host``.

    That is the value as sent, then, when it carries a port, the same without it:
    ``127.0.0.1:9100`` gives ``("127.0.0.1:9100", "127.0.0.1")`` and ``[::1]:9100`` gives
    ``("[::1]:9100", "[::1]")``.  A value without a port gives only itself.

    :param host: the received ``Host`` header.
    """
    match = _HOST_WITH_PORT.match(host.strip())
    return (host, match["name"]) if match else (host,)


def canonical_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload: bytes,
    lowercase_values: bool = True,
) -> str:
    """
    Build the canonical request string of the TC3 algorithm.

    :param method: HTTP method, e.g. ``POST``.
    :param path: the canonical URI, ``/`` for API 3.0.
    :param query: the raw query string (empty for POST requests).
    :param headers: request headers keyed by lower-case name.
    :param signed_headers: the lower-case header names listed in ``SignedHeaders``, in that order.
    :param payload: the raw request body, or ``b"UNSIGNED-PAYLOAD"``.
    :param lowercase_values: lower-case header values as the published algorithm says; the official
        SDK signs them verbatim, which only differs for mixed-case values.
    """
    lines = []
    for name in signed_headers:
        value = headers.get(name, "").strip()
        lines.append(f"{name}:{value.lower() if lowercase_values else value}\n")
    return "\n".join(
        [
            method,
            path,
            query,
            "".join(lines),
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def string_to_sign(timestamp: str, date: str, service: str, canonical: str) -> str:
    """Build the TC3 string to sign for ``canonical`` (a canonical request string)."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{digest}"


def sign(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """Return the hex TC3 signature of ``to_sign`` derived from ``secret_key``, date and service."""

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _known_secret_key(secret_key_for: Callable[[str], str | None], secret_id: str) -> str:
    """The SecretKey of ``secret_id``; the service's ``SecretIdNotFound`` for an unknown one."""
    secret_key = secret_key_for(secret_id)
    if secret_key is None:
        raise AuthFailureError(
            "SecretIdNotFound", f"The SecretId `{secret_id}` is not found; check that it is correct."
        )
    return secret_key


def verify_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_key_for: Callable[[str], str | None],
    token_for: Callable[[str], str | None],
    now: float,
) -> str:
    """
    Verify a signed API request and return the caller's SecretId.

    Checks, in order: the Authorization header's form, the timestamp's skew, the SecretId, the
    signature, the token.  The signature passes when it matches the canonical request under any
    of the SDK variants the module docstring lists; every candidate is compared, in constant time.

    :param method: HTTP method.
    :param path: request path (the canonical URI).
    :param query: raw query string.
    :param headers: request headers keyed by lower-case name.
    :param body: the raw body bytes as received.
    :param secret_key_for: returns the SecretKey of a SecretId, ``None`` for an unknown one.
    :param token_for: returns the session token a SecretId must present, ``None`` for none.
    :param now: the server's current time, epoch seconds.
    :raises AuthFailureError: with the service's sub-code when verification fails.
    :raises MissingParameterError: when ``X-TC-Timestamp`` is absent.
    """
    auth = parse_authorization(headers.get("authorization"))
    _check_scope(auth)
    raw_timestamp = headers.get("x-tc-timestamp")
    if raw_timestamp is None:
        raise MissingParameterError("X-TC-Timestamp")
    expected_date = _checked_date(raw_timestamp, now)
    secret_key = _known_secret_key(secret_key_for, auth.secret_id)
    payload = UNSIGNED_PAYLOAD.encode() if headers.get("x-tc-content-sha256") == UNSIGNED_PAYLOAD else body
    candidates = _candidate_signatures(
        auth,
        secret_key,
        raw_timestamp,
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload=payload,
    )
    # Compare against every candidate so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(candidate, auth.signature) for candidate in candidates]
    if auth.date != expected_date or not any(matches):
        raise AuthFailureError(
            "SignatureFailure",
            "The provided credentials could not be validated; check that the signature, the signed "
            "headers, the body and the credential date (the UTC date of X-TC-Timestamp) are correct.",
        )
    _check_token(token_for(auth.secret_id), headers.get("x-tc-token"))
    return auth.secret_id


def _candidate_signatures(
    auth: Authorization,
    secret_key: str,
    raw_timestamp: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload: bytes,
) -> set[str]:
    """
    Return the signatures of the request under each SDK variant the module docstring lists.

    :param auth: the parsed Authorization header (its date, service and signed headers).
    :param secret_key: the SecretKey of its SecretId.
    :param raw_timestamp: the ``X-TC-Timestamp`` value, as received.
    :param payload: the raw body, or ``b"UNSIGNED-PAYLOAD"``.
    """
    return {
        sign(
            secret_key,
            auth.date,
            auth.service,
            string_to_sign(
                raw_timestamp,
                auth.date,
                auth.service,
                canonical_request(
                    method=method,
                    path=path,
                    query=query,
                    headers={**headers, "host": host},
                    signed_headers=auth.signed_headers,
                    payload=payload,
                    lowercase_values=lowercase,
                ),
            ),
        )
        for host in host_forms(headers.get("host", ""))
        for lowercase in (True, False)
    }


def _check_scope(auth: Authorization) -> None:
    """
    Check that the signature covers ``content-type`` and ``host`` and its scope names this service.

    :param auth: the parsed Authorization header.
    :raises AuthFailureError: ``AuthFailure.InvalidAuthorization`` otherwise.
    """
    missing = [h for h in ("content-type", "host") if h not in auth.signed_headers]
    if missing:
        raise AuthFailureError(
            "InvalidAuthorization",
            f"SignedHeaders must include content-type and host; `{';'.join(auth.signed_headers)}` lacks "
            f"{' and '.join(missing)}.",
        )
    if auth.service != SERVICE:
        raise AuthFailureError(
            "InvalidAuthorization",
            f"The credential scope names service `{auth.service}`, but this endpoint serves `{SERVICE}`.",
        )


def _checked_date(raw_timestamp: str, now: float) -> str:
    """
    Check ``X-TC-Timestamp`` against the server clock and return its UTC date, ``YYYY-MM-DD``.

    :param raw_timestamp: the header's value.
    :param now: the server's current time, epoch seconds.
    :raises AuthFailureError: ``InvalidAuthorization`` when it is no integer, ``SignatureExpire``
        when it is too far from ``now``.
    """
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise AuthFailureError(
            "InvalidAuthorization", f"X-TC-Timestamp `{raw_timestamp}` is not an integer of epoch seconds."
        ) from None
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise AuthFailureError(
            "SignatureExpire",
            f"Signature expired: timestamp {timestamp} is more than {MAX_CLOCK_SKEW_SECONDS} seconds "
            f"away from the server time {int(now)}.",
        )
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).strftime("%Y-%m-%d")


def _check_token(expected: str | None, received: str | None) -> None:
    """
    Check the ``X-TC-Token`` header, in constant time.

    :param expected: the token the SecretId must present, ``None`` for none.
    :param received: the header's value, ``None`` when absent.
    :raises AuthFailureError: ``AuthFailure.TokenFailure`` when they do not agree.
    """
    if expected is None and received:
        raise AuthFailureError("TokenFailure", "The request carries a token, but this SecretId takes none.")
    if expected is not None and not hmac.compare_digest((received or "").encode(), expected.encode()):
        raise AuthFailureError("TokenFailure", "The token is missing, invalid or expired.")
