"""
Keep the Tencent Cloud SDK's debug logger from printing credentials.

At DEBUG the SDK logs every request it sends with all its headers (``SendRequest: ...``), which
include ``X-TC-Token`` (the session token of temporary credentials) and ``Authorization``.  A filter
on the SDK's logger rewrites those header values to ``***`` before any handler sees the record,
whatever handler the user attached (Airflow's task log, ``set_stream_logger``, pytest's caplog).
"""

from __future__ import annotations

import logging
import re
import threading

#: The SDK's logger, shared by its sync and async clients.
SDK_LOGGER_NAME = "tencentcloud_sdk_common"

_SENSITIVE_HEADER = re.compile(r"(?i)(\b(?:x-tc-token|authorization)[ \t]*:[ \t]*)[^\r\n]*")
_SENSITIVE_PARAM = re.compile(r"(?i)(\b(?:token|secretkey|signature)=)[^&\s]+")


def redact(text: str) -> str:
    """Replace the values of credential-bearing headers and query parameters in ``text`` with ``***``."""
    return _SENSITIVE_PARAM.sub(r"\1***", _SENSITIVE_HEADER.sub(r"\1***", text))


class SdkCredentialRedactingFilter(logging.Filter):
    """A logging filter that redacts credential headers from the SDK's request and response dumps."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_install_lock = threading.Lock()


def guard_sdk_logger() -> None:
    """Install :class:`SdkCredentialRedactingFilter` on the SDK's logger (once per process)."""
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    with _install_lock:
        if not any(isinstance(f, SdkCredentialRedactingFilter) for f in sdk_logger.filters):
            sdk_logger.addFilter(SdkCredentialRedactingFilter())
