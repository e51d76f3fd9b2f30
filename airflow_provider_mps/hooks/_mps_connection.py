"""
Turn a ``tencentcloud_mps`` Airflow connection into the settings the SDK clients are built from.

Everything here is plain Python: the connection is validated and normalised into
:class:`MpsConnectionSettings` without importing the Tencent Cloud SDK.  The SDK objects
(``ClientProfile`` / ``HttpProfile``) are built from those settings in :func:`build_client_profile`,
which imports the SDK lazily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_mps.exceptions import MpsConnectionConfigError, MpsInvalidParameterError
from airflow_provider_mps.hooks._mps_connection_form import REGION_REGEX

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_REGION = "ap-guangzhou"
DEFAULT_ENDPOINT = "https://mps.tencentcloudapi.com"
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_LANGUAGE = "en-US"
LANGUAGES: tuple[str, ...] = ("en-US", "zh-CN")

#: Extras a ``tencentcloud_mps`` connection understands.
KNOWN_EXTRAS: tuple[str, ...] = (
    "region",
    "endpoint",
    "token",
    "request_timeout",
    "proxy",
    "language",
    "image_budget",
)

REGION_PATTERN = re.compile(REGION_REGEX)

#: ``scheme://userinfo@`` in a URL, up to the last ``@`` before the path, query or fragment.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")


def redact_userinfo(text: str) -> str:
    """
    Replace the user and password of every URL in ``text`` with ``***``.

    ``https://user:pass@host`` becomes ``https://***@host``; text without such a URL is unchanged.
    """
    return _USERINFO.sub(r"\1***@", text)


@dataclass(frozen=True)
class MpsConnectionSettings:
    """
    A validated ``tencentcloud_mps`` connection.

    :param conn_id: the Airflow connection id the settings came from.
    :param secret_id: the SecretId (connection login), or ``None`` to use the SDK's credential chain.
    :param secret_key: the SecretKey (connection password); never shown in ``repr``.
    :param token: the session token of temporary credentials; never shown in ``repr``.
    :param region: the Tencent Cloud region, e.g. ``ap-guangzhou``.
    :param endpoint: the full endpoint URL, e.g. ``https://mps.tencentcloudapi.com``.
    :param request_timeout: seconds before one HTTP request gives up.
    :param proxy: an HTTP(S) proxy URL, or ``None``; never shown in ``repr`` (it may hold a password).
    :param language: the language of the service's error messages, ``en-US`` or ``zh-CN``.
    :param image_budget: the ``image_budget`` extra, a rate such as ``2000 per day`` overriding
        ``[tencentcloud_mps] image_budget`` (read by :mod:`airflow_provider_mps.core.budget`), or ``None``.
    """

    conn_id: str
    secret_id: str | None
    secret_key: str | None = field(repr=False)
    token: str | None = field(repr=False)
    region: str = DEFAULT_REGION
    endpoint: str = DEFAULT_ENDPOINT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    proxy: str | None = field(default=None, repr=False)
    language: str = DEFAULT_LANGUAGE
    image_budget: str | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        """``http`` or ``https``, as the SDK's ``HttpProfile(protocol=...)`` takes it."""
        return urlsplit(self.endpoint).scheme

    @property
    def host(self) -> str:
        """``host[:port]`` of the endpoint, as the SDK's ``HttpProfile(endpoint=...)`` takes it."""
        return urlsplit(self.endpoint).netloc

    def secrets(self) -> list[str]:
        """The values to register with Airflow's secrets masker."""
        values = [v for v in (self.secret_key, self.token) if v]
        if self.proxy and (proxy_password := urlsplit(self.proxy).password):
            values.append(proxy_password)
        return values


def _extra_value(extras: Mapping[str, Any], name: str, conn_type: str) -> Any:
    """Read an extra by its plain name or the ``extra__<conn_type>__<name>`` form older UIs store."""
    for key in (name, f"extra__{conn_type}__{name}"):
        value = extras.get(key)
        if value is not None and value != "":
            return value
    return None


def _invalid_extra(conn_id: str, name: str, value: object, rule: str) -> MpsInvalidParameterError:
    return MpsInvalidParameterError(f"extra '{name}' of connection '{conn_id}'", rule, value)


def validate_region(region: object, *, where: str) -> str:
    """
    Return ``region`` if it is a Tencent Cloud region name.

    :param region: the value to check.
    :param where: what the value is, for the error message (e.g. ``region``).
    :raises MpsInvalidParameterError: when it is not shaped like ``ap-guangzhou``.
    """
    if not isinstance(region, str) or not REGION_PATTERN.match(region):
        raise MpsInvalidParameterError(
            where,
            "must be a Tencent Cloud region name in lower case, such as ap-guangzhou, "
            "na-siliconvalley or ap-shanghai-fsi.",
            region,
        )
    return region


def _validate_endpoint(conn_id: str, value: object) -> str:
    rule = (
        "must be a full http:// or https:// URL with a host and no path, query or credentials, "
        "such as https://mps.tencentcloudapi.com or http://127.0.0.1:9100 for the local emulator."
    )
    if not isinstance(value, str):
        raise _invalid_extra(conn_id, "endpoint", value, rule)
    # A URL with credentials is refused; the error shows it without them.
    shown = redact_userinfo(value)
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _invalid_extra(conn_id, "endpoint", shown, rule) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "@" in parts.netloc
    ):
        raise _invalid_extra(conn_id, "endpoint", shown, rule)
    return f"{parts.scheme}://{parts.netloc}"


def _validate_timeout(conn_id: str, value: object) -> float:
    rule = "must be a number of seconds greater than 0, such as 60."
    if isinstance(value, bool):
        raise _invalid_extra(conn_id, "request_timeout", value, rule)
    try:
        timeout = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _invalid_extra(conn_id, "request_timeout", value, rule) from None
    if not timeout > 0 or timeout == float("inf"):
        raise _invalid_extra(conn_id, "request_timeout", value, rule)
    return timeout


def _validate_proxy(conn_id: str, value: object) -> str:
    rule = "must be a proxy URL with a scheme and a host, such as http://proxy.example.com:3128."
    if not isinstance(value, str):
        raise _invalid_extra(conn_id, "proxy", "<not a string>", rule)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _invalid_extra(conn_id, "proxy", "<redacted>", rule) from None
    if not parts.scheme or not parts.hostname:
        raise _invalid_extra(conn_id, "proxy", "<redacted>", rule)
    return value


def _validate_language(conn_id: str, value: object) -> str:
    if value not in LANGUAGES:
        raise _invalid_extra(conn_id, "language", value, "must be en-US or zh-CN.")
    return str(value)


def _validate_image_budget(conn_id: str, value: object) -> str:
    # The rate's syntax is checked by core.budget, with the limits library, before a create is sent.
    if not isinstance(value, str):
        raise _invalid_extra(conn_id, "image_budget", value, "must be a rate such as 2000 per day.")
    return value.strip()


def _check_credential_text(conn_id: str, value: str, what: str) -> None:
    if value != value.strip() or any(c.isspace() for c in value):
        raise MpsConnectionConfigError(
            f"The {what} of connection '{conn_id}' contains whitespace; "
            "paste it again without spaces or line breaks."
        )


def _check_credentials(conn_id: str, secret_id: str | None, secret_key: str | None, token: object) -> None:
    """Refuse half a key pair, a token without keys (or not a string), and keys holding whitespace."""
    if secret_id and not secret_key:
        raise MpsConnectionConfigError(
            f"Connection '{conn_id}' has a SecretId (login) but no SecretKey (password); "
            "set both, or neither to use the Tencent Cloud credential chain."
        )
    if secret_key and not secret_id:
        raise MpsConnectionConfigError(
            f"Connection '{conn_id}' has a SecretKey (password) but no SecretId (login); "
            "set both, or neither to use the Tencent Cloud credential chain."
        )
    if token is not None and not secret_id:
        raise MpsConnectionConfigError(
            f"Connection '{conn_id}' has a token extra but no SecretId (login) and SecretKey "
            "(password); a token is only valid together with the temporary SecretId and SecretKey "
            "it was issued with."
        )
    if token is not None and not isinstance(token, str):
        raise MpsConnectionConfigError(f"The token extra of connection '{conn_id}' must be a string.")
    if secret_id:
        _check_credential_text(conn_id, secret_id, "SecretId (login)")
    if secret_key:
        _check_credential_text(conn_id, secret_key, "SecretKey (password)")


def _choose_region(conn_id: str, region: str | None, extras: Mapping[str, Any], conn_type: str) -> str:
    """The region: ``region`` when given, else the connection's ``region`` extra, else the default."""
    if region is not None:
        return validate_region(region, where="region")
    if (value := _extra_value(extras, "region", conn_type)) is not None:
        return validate_region(value, where=f"extra 'region' of connection '{conn_id}'")
    return DEFAULT_REGION


def settings_from_connection(
    *,
    conn_id: str,
    conn_type: str,
    login: str | None,
    password: str | None,
    extras: Mapping[str, Any],
    region: str | None = None,
) -> MpsConnectionSettings:
    """
    Validate a connection's fields and extras into :class:`MpsConnectionSettings`.

    :param conn_id: the connection id, named in every error.
    :param conn_type: the connection type, for reading ``extra__<conn_type>__<name>`` extras.
    :param login: the SecretId, or empty to use the SDK's credential chain.
    :param password: the SecretKey, or empty to use the SDK's credential chain.
    :param extras: the connection's extras (``extra_dejson``).
    :param region: a region that overrides the connection's ``region`` extra.
    :raises MpsConnectionConfigError: when only one of SecretId / SecretKey is set, a token has no
        keys, or a key holds whitespace.
    :raises MpsInvalidParameterError: when an extra breaks its rule.
    """
    secret_id = login or None
    secret_key = password or None
    token = _extra_value(extras, "token", conn_type)
    _check_credentials(conn_id, secret_id, secret_key, token)
    chosen_region = _choose_region(conn_id, region, extras, conn_type)
    endpoint = _extra_value(extras, "endpoint", conn_type)
    timeout = _extra_value(extras, "request_timeout", conn_type)
    proxy = _extra_value(extras, "proxy", conn_type)
    language = _extra_value(extras, "language", conn_type)
    budget = _extra_value(extras, "image_budget", conn_type)
    return MpsConnectionSettings(
        conn_id=conn_id,
        secret_id=secret_id,
        secret_key=secret_key,
        token=token,
        region=chosen_region,
        endpoint=DEFAULT_ENDPOINT if endpoint is None else _validate_endpoint(conn_id, endpoint),
        request_timeout=DEFAULT_REQUEST_TIMEOUT if timeout is None else _validate_timeout(conn_id, timeout),
        proxy=None if proxy is None else _validate_proxy(conn_id, proxy),
        language=DEFAULT_LANGUAGE if language is None else _validate_language(conn_id, language),
        image_budget=None if budget is None else _validate_image_budget(conn_id, budget) or None,
    )


def read_connection(
    conn: Any, extras: Mapping[str, Any], *, conn_id: str, conn_type: str, region: str | None, log: Any
) -> MpsConnectionSettings:
    """
    :func:`settings_from_connection` of an Airflow connection; warn of extras it does not read.

    :param conn: the Airflow connection (its ``login`` and ``password`` are read).
    :param extras: its extras, already parsed.
    :param conn_id: the connection id, named in every error and in the warning.
    :param conn_type: the connection type (see :func:`settings_from_connection`).
    :param region: a region that overrides the connection's ``region`` extra.
    :param log: the hook's logger, for the warning about unknown extras (likely typos).
    """
    settings = settings_from_connection(
        conn_id=conn_id,
        conn_type=conn_type,
        login=conn.login,
        password=conn.password,
        extras=extras,
        region=region,
    )
    if unread := unknown_extras(extras, conn_type):
        log.warning(
            "Connection %s has extras %s that a tencentcloud_mps connection does not read; "
            "the known extras are %s.",
            conn_id,
            ", ".join(unread),
            ", ".join(KNOWN_EXTRAS),
        )
    return settings


def unknown_extras(extras: Mapping[str, Any], conn_type: str) -> list[str]:
    """Return the extras' keys that no known field reads (likely typos), sorted."""
    known = set(KNOWN_EXTRAS) | {f"extra__{conn_type}__{name}" for name in KNOWN_EXTRAS}
    return sorted(key for key in extras if key not in known)


def build_client_profile(settings: MpsConnectionSettings, *, with_proxy: bool = True) -> Any:
    """
    Build the SDK's ``ClientProfile`` for ``settings`` (imports the SDK).

    Keep-alive is on, the SDK's own retryer and region breaker stay off: the hook retries itself.

    :param settings: the validated connection.
    :param with_proxy: put the proxy in the profile (the sync client); the async client's httpx
        no longer takes the SDK's ``proxies`` argument, so the hook sets its proxy itself.
    """
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    http_profile = HttpProfile(
        protocol=settings.scheme,
        endpoint=settings.host,
        reqTimeout=settings.request_timeout,
        keepAlive=True,
        proxy=settings.proxy if with_proxy else None,
    )
    return ClientProfile(httpProfile=http_profile, language=settings.language)
