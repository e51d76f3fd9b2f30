"""
One error mapping for both SDK clients, and the one classifier every caller asks what to do.

:func:`to_mps_error` turns whatever either SDK client raised into the provider's exceptions;
:func:`classify` tells a caller what an error means for it (:class:`Handling`).  Every error-code
rule of the provider is in this module.

The two SDK clients fail differently for the same fault:

* the sync client wraps transport failures of ``requests`` as
  ``TencentCloudSDKException("ClientNetworkError", str(error))`` and malformed bodies as
  ``TencentCloudSDKException("JSONDecodeError" / "KeyError", ...)``; the original exception
  survives as ``__context__``;
* the async client lets raw ``httpx`` transport errors and ``json`` / ``KeyError`` escape;
* both raise ``TencentCloudSDKException("ServerNetworkError", <body bytes>)`` for a non-200 HTTP
  status, and ``TencentCloudSDKException(code, message, request_id)`` for an API error response.

:func:`to_mps_error` turns all of them into the provider's exceptions.  A network error says
whether the request may have reached the service: only a connection that was never established
(refused, unresolvable, connect timeout, TLS handshake or proxy failure, no free pool slot) is
certain not to have.

TLS needs care: ``requests`` raises ``SSLError`` both for a failed handshake and for a TLS error
while reading the response, after the request went out; the async client lets the latter escape
as a bare ``ssl.SSLError``.  Only an error raised by the handshake itself (a certificate that does
not verify, or the ``ssl`` module's ``do_handshake`` failing) counts as "never sent"; any other
TLS error may have come after the service got the request.
"""

from __future__ import annotations

import ssl
import traceback
from enum import Enum

from airflow_provider_mps.core.api import CREATE_ACTION
from airflow_provider_mps.exceptions import MpsApiError, MpsError, MpsNetworkError, MpsTransientError
from airflow_provider_mps.hooks._mps_connection import redact_userinfo

#: Error-code prefixes the service uses for conditions that clear up on their own.
TRANSIENT_CODES: tuple[str, ...] = (
    "RequestLimitExceeded",
    "InternalError",
    "ServerNetworkError",
    "ClientNetworkError",
    "ResourceUnavailable",
    "FailedOperation.RequestTimeout",
)
#: A create refused for quota created nothing: the one API error a create may be sent again after.
QUOTA_CODES: tuple[str, ...] = ("RequestLimitExceeded",)
#: A create answered with these may have created a task before the service failed.
SERVICE_FAULT_CODES: tuple[str, ...] = ("InternalError",)
#: Requests the service refuses as malformed: the same request cannot succeed on a retry.
REFUSED_CODES: tuple[str, ...] = (
    "InvalidParameter",
    "InvalidParameterValue",
    "MissingParameter",
    "UnknownParameter",
)
#: Credentials, permissions and region: no request of the connection can succeed until they change.
DENIED_CODES: tuple[str, ...] = (
    "AuthFailure",
    "UnauthorizedOperation",
    "OperationDenied",
    "InvalidAction",
    "UnsupportedRegion",
)
#: The TaskId is unknown to the service.
NOT_FOUND_CODES: tuple[str, ...] = ("ResourceNotFound",)


def has_code(code: str | None, prefixes: tuple[str, ...]) -> bool:
    """Whether ``code`` is one of ``prefixes`` or a sub-code of one (``InvalidParameter.Prompt``)."""
    return bool(code) and any(code == prefix or code.startswith(prefix + ".") for prefix in prefixes)  # type: ignore[union-attr]


class Handling(str, Enum):
    """What a caller does with an error: the answer of :func:`classify`."""

    #: Certainly created nothing (quota, a connection never made) or a read-only call that may pass
    #: now: the hook sends it again, after a backoff.
    RETRY = "retry"
    #: A create that may have reached the service: it may have created a task whose TaskId is lost.
    POSSIBLY_CREATED = "possibly_created"
    #: The service refused the request's parameters; the same request can never pass.
    REFUSED = "refused"
    #: Credentials, permissions or region: nothing sent on this connection passes until they change.
    DENIED = "denied"
    #: The TaskId is unknown to the service.
    NOT_FOUND = "not_found"
    #: Created nothing, and may pass later: a new Airflow try may send it again.
    TRANSIENT = "transient"
    #: Anything else the service answered; created nothing.
    FAILED = "failed"

    @property
    def created_nothing(self) -> bool:
        """Whether the failed call certainly left nothing billable behind."""
        return self is not Handling.POSSIBLY_CREATED


def classify(error: BaseException, action: str) -> Handling:
    """
    Say what ``error``, raised by ``action``, means for the caller.

    :param error: a provider exception (anything else is mapped first with :func:`to_mps_error`).
    :param action: the API action, e.g. ``CreateAigcImageTask``.
    """
    if not isinstance(error, MpsError):
        error = to_mps_error(error, action)
    if isinstance(error, MpsNetworkError):
        if not error.request_may_have_reached_service:
            return Handling.RETRY
        return Handling.POSSIBLY_CREATED if action == CREATE_ACTION else Handling.RETRY
    code = getattr(error, "code", None)
    if not isinstance(error, MpsApiError) or not isinstance(code, str):
        return Handling.FAILED
    for prefixes, handling in (
        (REFUSED_CODES, Handling.REFUSED),
        (DENIED_CODES, Handling.DENIED),
        (NOT_FOUND_CODES, Handling.NOT_FOUND),
    ):
        if has_code(code, prefixes):
            return handling
    if action == CREATE_ACTION:
        if has_code(code, QUOTA_CODES):
            return Handling.RETRY
        if has_code(code, SERVICE_FAULT_CODES):
            return Handling.POSSIBLY_CREATED
        return Handling.TRANSIENT if isinstance(error, MpsTransientError) else Handling.FAILED
    return Handling.RETRY if isinstance(error, MpsTransientError) else Handling.FAILED


CONNECT_FAILED = "ClientNetworkError.ConnectFailed"
TIMEOUT = "ClientNetworkError.Timeout"
CONNECTION_LOST = "ClientNetworkError.ConnectionLost"
MALFORMED_RESPONSE = "ClientNetworkError.MalformedResponse"
HTTP_ERROR = "ServerNetworkError"

_MAX_MESSAGE = 300


def _short(text: object) -> str:
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    shown = redact_userinfo(" ".join(str(text).split()))
    return shown if len(shown) <= _MAX_MESSAGE else shown[: _MAX_MESSAGE - 3] + "..."


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _nested(error: BaseException) -> list[BaseException]:
    """``error``, its causes and contexts, and the exceptions urllib3 and requests carry as arguments."""
    found: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending.extend(cause for cause in (current.__cause__, current.__context__) if cause is not None)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError
        if isinstance(reason, BaseException):
            pending.append(reason)
    return found


def _tls_handshake_failed(error: BaseException) -> bool:
    """
    Whether ``error`` comes from a TLS handshake, so the request itself was never sent.

    A certificate that does not verify fails only in the handshake.  Any other ``ssl.SSLError``
    counts when the ``ssl`` module raised it from ``do_handshake``; a TLS error while reading the
    answer (a bad record, an alert after the request went out) does not.
    """
    from urllib3.util.ssl_match_hostname import CertificateError as HostnameMismatch

    for cause in _nested(error):
        if isinstance(cause, (ssl.SSLCertVerificationError, HostnameMismatch)):
            return True
        if isinstance(cause, ssl.SSLError) and any(
            frame.f_code.co_name == "do_handshake" for frame, _ in traceback.walk_tb(cause.__traceback__)
        ):
            return True
    return False


def _classify_requests(error: BaseException) -> tuple[str, bool] | None:
    import requests.exceptions as rex
    import urllib3.exceptions as uex

    if isinstance(error, rex.SSLError):
        return (CONNECT_FAILED, False) if _tls_handshake_failed(error) else (CONNECTION_LOST, True)
    if isinstance(error, (rex.ConnectTimeout, rex.ProxyError)):
        return CONNECT_FAILED, False
    if isinstance(error, rex.Timeout):
        return TIMEOUT, True
    if isinstance(error, rex.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, uex.MaxRetryError) and isinstance(reason.reason, uex.ConnectTimeoutError):
            return CONNECT_FAILED, False
        return CONNECTION_LOST, True
    if isinstance(error, (rex.InvalidURL, rex.MissingSchema, rex.InvalidSchema)):
        return CONNECT_FAILED, False
    if isinstance(error, rex.RequestException):
        return CONNECTION_LOST, True
    return None


def _classify_httpx(error: BaseException) -> tuple[str, bool] | None:
    import httpx

    never_sent = (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.ProxyError,
        httpx.UnsupportedProtocol,
    )
    if isinstance(error, never_sent):
        return CONNECT_FAILED, False
    if isinstance(error, httpx.TimeoutException):
        return TIMEOUT, True
    if isinstance(error, httpx.DecodingError):
        return MALFORMED_RESPONSE, True
    if isinstance(error, httpx.HTTPError):
        return CONNECTION_LOST, True
    return None


def _classify_tls(error: BaseException) -> tuple[str, bool] | None:
    """A bare ``ssl.SSLError`` (the async client lets one escape while it reads the answer)."""
    if not isinstance(error, ssl.SSLError):
        return None
    return (CONNECT_FAILED, False) if _tls_handshake_failed(error) else (CONNECTION_LOST, True)


def _classify_transport(error: BaseException) -> tuple[str, bool] | None:
    """Classify the first transport-level error in ``error``'s chain as (code, may have reached)."""
    for cause in _chain(error):
        found = _classify_requests(cause) or _classify_httpx(cause) or _classify_tls(cause)
        if found:
            return found
    return None


def _is_malformed_body(error: BaseException) -> bool:
    return any(isinstance(cause, (ValueError, KeyError, TypeError, IndexError)) for cause in _chain(error))


def _network_error(code: str, reached: bool, detail: object, action: str) -> MpsNetworkError:
    what = {
        CONNECT_FAILED: "Could not connect to the service, so the request was not sent",
        TIMEOUT: "The request timed out after it was sent",
        CONNECTION_LOST: "The connection was lost after the request was sent",
        MALFORMED_RESPONSE: "The service's answer could not be read as an API response",
    }[code]
    text = _short(detail)
    return MpsNetworkError(
        code,
        f"{what}: {text}" if text else f"{what}.",
        None,
        action,
        request_may_have_reached_service=reached,
    )


def to_mps_error(error: BaseException, action: str) -> MpsError:
    """
    Return the provider exception for an error raised by either SDK client during ``action``.

    :param error: what the SDK client (sync or async) raised.
    :param action: the API action that failed, e.g. ``CreateAigcImageTask``.
    """
    if isinstance(error, MpsError):
        return error
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    if isinstance(error, TencentCloudSDKException):
        code, message, request_id = error.code or "ClientError", error.message, error.requestId
        if request_id:
            # An API error response: the service's own code, message and RequestId.
            cls = MpsTransientError if has_code(code, TRANSIENT_CODES) else MpsApiError
            return cls(code, _short(message), request_id, action)
        if code == HTTP_ERROR:
            return MpsNetworkError(
                HTTP_ERROR,
                "The service answered with an HTTP error status instead of an API response: "
                + _short(message),
                None,
                action,
                request_may_have_reached_service=True,
            )
        transport = _classify_transport(error)
        if transport:
            return _network_error(*transport, message, action)
        if code == "ClientNetworkError":
            return _network_error(CONNECTION_LOST, True, message, action)
        if _is_malformed_body(error):
            return _network_error(MALFORMED_RESPONSE, True, f"{code}: {message}", action)
        return MpsApiError(code, _short(message), None, action)

    transport = _classify_transport(error)
    if transport:
        return _network_error(*transport, error, action)
    if _is_malformed_body(error):
        return _network_error(MALFORMED_RESPONSE, True, f"{type(error).__name__}: {error}", action)
    return MpsApiError("ClientError", f"{type(error).__name__}: {_short(error)}", None, action)
