"""
Credentials for the SDK clients: the connection's keys, or the SDK's own credential chain.

The chain follows ``tencentcloud.common.credential.DefaultCredentialProvider`` step by step
(environment variables, profile file, CVM role, TKE OIDC) with two differences: the CVM role
probe of the instance metadata service is bounded by :data:`CVM_METADATA_TIMEOUT` (the SDK's
own probe has no timeout), and when every step comes up empty the error says what each step
looked for instead of the SDK's ``OSError("TKE_REGION not exist")``.

A role's temporary keys reach the SDK clients through :class:`RoleKeys`: the clients read the keys
from memory while they sign, and the hook refreshes them before each request (off the event loop
on the async path), instead of the SDK's role credentials refreshing themselves over the network
inside the getters the clients call while signing.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.exceptions import MpsCredentialsError

if TYPE_CHECKING:
    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings

#: Seconds the CVM role probe waits for the instance metadata service.
CVM_METADATA_TIMEOUT = 1.0

PROFILE_FILES: tuple[str, ...] = ("~/.tencentcloud/credentials", "/etc/tencentcloud/credentials")


class RoleKeys:
    """
    A role's temporary keys as the SDK clients read them: from memory, never refreshed while signing.

    The SDK's role credentials (``CVMRoleCredential``, TKE's ``OIDCRoleArnCredential``) refresh
    themselves with a blocking HTTP call inside ``get_credential_info()`` and their property
    getters, which a client calls while it signs a request; for the async client that is on the
    triggerer's event loop.  The clients sign with this object instead, and the hook calls
    :meth:`refresh` before each request.

    :param role: the SDK's role credential, whose keys were just fetched.
    """

    def __init__(self, role: Any) -> None:
        self._role = role
        secret_id, secret_key, token = role.get_credential_info()
        self._keys: tuple[Any, Any, Any] = (secret_id, secret_key, token)

    def get_credential_info(self) -> tuple[Any, Any, Any]:
        """The SecretId, SecretKey and token of the last refresh (what the SDK clients sign with)."""
        return self._keys

    @property
    def secret_id(self) -> Any:
        """The temporary SecretId."""
        return self._keys[0]

    @property
    def secret_key(self) -> Any:
        """The temporary SecretKey."""
        return self._keys[1]

    @property
    def token(self) -> Any:
        """The session token."""
        return self._keys[2]

    # The SDK's own camel-case names for the same keys.
    secretId = secret_id
    secretKey = secret_key

    def refresh(self) -> list[str]:
        """
        Ask the role for its keys (a blocking network call when they are due) and keep them.

        :return: the SecretKey and token values that are new since the last refresh, for the
            secrets masker.  If the role returns no keys (its refresh failed), the last keys stay.
        """
        secret_id, secret_key, token = self._role.get_credential_info()
        if not secret_id or not secret_key:
            return []
        previous, self._keys = self._keys, (secret_id, secret_key, token)
        return [value for value in (secret_key, token) if value and value not in previous[1:]]


@dataclass(frozen=True)
class ResolvedCredential:
    """
    An SDK credential object and where it came from.

    :param credential: the SDK ``Credential`` of fixed keys, or :class:`RoleKeys` for a role.
    :param source: where it was found, for the task log, e.g. ``environment variables``.
    """

    credential: Any
    source: str

    @property
    def is_role(self) -> bool:
        """Whether the keys are a role's temporary keys, refreshed before each request."""
        return isinstance(self.credential, RoleKeys)

    @property
    def account_key(self) -> str:
        """
        A non-secret name of the keys, stable across refreshes: the SecretId, or the role.

        A role's temporary SecretId changes at every refresh, so a role is named by its source.
        """
        return self.source if self.is_role else self.secret_id()

    def secret_id(self) -> str:
        """The SecretId (not a secret: it names the key and appears in every signed request)."""
        return str(self.credential.get_credential_info()[0])

    def secrets(self) -> list[str]:
        """The SecretKey and token, for Airflow's secrets masker."""
        _, secret_key, token = self.credential.get_credential_info()
        return [value for value in (secret_key, token) if value]


def resolve_credential(settings: MpsConnectionSettings) -> ResolvedCredential:
    """
    Return the credential the SDK clients sign with.

    :param settings: the validated connection.
    :raises MpsCredentialsError: when the connection has no keys and the chain finds none.
    """
    from tencentcloud.common.credential import Credential

    if settings.secret_id and settings.secret_key:
        credential = Credential(settings.secret_id, settings.secret_key, settings.token)
        return ResolvedCredential(credential, f"connection '{settings.conn_id}'")
    return _credential_chain(settings.conn_id)


def _credential_chain(conn_id: str) -> ResolvedCredential:
    from tencentcloud.common.credential import EnvironmentVariableCredential, ProfileCredential

    tried: list[str] = []

    credential = EnvironmentVariableCredential().get_credential()
    if credential is not None:
        return ResolvedCredential(credential, "environment variables TENCENTCLOUD_SECRET_ID/SECRET_KEY")
    tried.append("environment variables TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not both set")

    credential = ProfileCredential().get_credential()
    if credential is not None:
        return ResolvedCredential(credential, "profile file [default] section")
    tried.append(
        "no profile file with secret_id and secret_key in its [default] section at "
        + " or ".join(PROFILE_FILES)
    )

    resolved, why = _cvm_role_credential()
    if resolved is not None:
        return resolved
    tried.append(why)

    resolved, why = _tke_oidc_credential()
    if resolved is not None:
        return resolved
    tried.append(why)

    raise MpsCredentialsError(
        f"No Tencent Cloud credentials found for connection '{conn_id}': it has no SecretId (login) "
        "and SecretKey (password), and the Tencent Cloud credential chain found none ("
        + "; ".join(tried)
        + "). Set login and password on the connection, or provide credentials in one of those places."
    )


def _fetch(url: str, timeout: float) -> str:
    """GET ``url`` within ``timeout`` seconds overall (name resolution included)."""
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                outcome["body"] = response.read().decode("utf-8").strip()
        except Exception as error:
            outcome["error"] = error

    worker = threading.Thread(target=fetch, name="mps-cvm-metadata-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if "body" in outcome:
        return outcome["body"]
    raise OSError(str(outcome.get("error") or f"no answer within {timeout:g} s"))


def _cvm_role_credential() -> tuple[ResolvedCredential | None, str]:
    from tencentcloud.common.credential import CVMRoleCredential

    endpoint = CVMRoleCredential._role_endpoint
    try:
        role = _fetch(endpoint, CVM_METADATA_TIMEOUT)
    except OSError as error:
        return None, f"no CVM role: the instance metadata service at {endpoint} did not answer ({error})"
    if not role:
        return None, f"no CVM role: the instance metadata service at {endpoint} names no role"
    credential = CVMRoleCredential(role_name=role)
    if credential.get_credential() is None:
        return None, f"no CVM role: the metadata service gave no temporary credentials for role {role!r}"
    return ResolvedCredential(RoleKeys(credential), f"CVM role {role!r}"), ""


def _tke_oidc_credential() -> tuple[ResolvedCredential | None, str]:
    from tencentcloud.common.credential import DefaultTkeOIDCRoleArnProvider

    if not os.environ.get("TKE_REGION"):
        return None, "no TKE OIDC role: TKE_REGION is not set"
    try:
        credential = DefaultTkeOIDCRoleArnProvider().get_credential()
    except OSError as error:
        return None, f"no TKE OIDC role: {error}"
    try:
        keys = RoleKeys(credential)  # the first AssumeRoleWithWebIdentity call
    except Exception as error:
        return None, f"no TKE OIDC role: the STS call for its temporary credentials failed ({error})"
    return ResolvedCredential(keys, "TKE OIDC role"), ""
