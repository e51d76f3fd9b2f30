"""Exceptions raised by the Tencent Cloud MPS provider.

Every error the service or the network produces becomes one of these, so task logs show the
service's error code, its message and the RequestId to quote in a support case.  The classes
say what a caller should do next:

* :class:`MpsTransientError` — try again later (quota, service-side blip, network).  A create
  call is *not* idempotent on the service: a caller that may already have reached the service
  (:attr:`MpsNetworkError.request_may_have_reached_service`) must not resend a create blindly.
* :class:`MpsApiError` that is not transient — the request is wrong or not allowed; retrying
  will not help.
* :class:`MpsInvalidParameterError` — refused locally before anything was sent; fails the task
  without retries.
* :class:`MpsConnectionConfigError` — the connection's keys are set wrongly; fails the task
  without retries (while :class:`MpsCredentialsError`, "no credentials found", is retried).
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class MpsError(AirflowException):
    """Base class of every error raised by this provider."""


class MpsApiError(MpsError):
    """
    The service (or the transport to it) answered a request with an error.

    :param code: the service's error code, e.g. ``AuthFailure.SignatureFailure``.
    :param message: the service's message, verbatim.
    :param request_id: the RequestId the service assigned, or ``None`` when none came back.
    :param action: the API action that failed, e.g. ``CreateAigcImageTask``.
    """

    def __init__(
        self, code: str, message: str, request_id: str | None = None, action: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.action = action
        where = f"{action} failed" if action else "MPS request failed"
        super().__init__(f"{where} with {code}: {message} (RequestId: {request_id or 'none'})")

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed (the codes: :data:`~.core.errors.TRANSIENT_CODES`)."""
        from airflow_provider_mps.core.errors import TRANSIENT_CODES, has_code

        return has_code(self.code, TRANSIENT_CODES)

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.request_id, self.action))


class MpsTransientError(MpsApiError):
    """A quota, service-side or network condition that may clear up if the call is repeated."""

    @property
    def transient(self) -> bool:
        """Always ``True``: these conditions clear up on their own."""
        return True


class MpsNetworkError(MpsTransientError):
    """
    The request or its response was lost in transit (refused, reset, timed out, malformed body).

    :param request_may_have_reached_service: ``False`` only when the connection was never
        established, so the service cannot have acted on the request.  A create call that fails
        with this set to ``True`` may have created a task whose TaskId is lost.
    """

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str | None = None,
        action: str | None = None,
        *,
        request_may_have_reached_service: bool = True,
    ) -> None:
        self.request_may_have_reached_service = request_may_have_reached_service
        super().__init__(code, message, request_id, action)

    def __reduce__(self):
        return (
            _rebuild_network_error,
            (self.code, self.message, self.request_id, self.action, self.request_may_have_reached_service),
        )


def _rebuild_network_error(
    code: str, message: str, request_id: str | None, action: str | None, reached: bool
) -> MpsNetworkError:
    return MpsNetworkError(code, message, request_id, action, request_may_have_reached_service=reached)


class MpsCredentialsError(MpsError):
    """
    No usable SecretId/SecretKey was found in the connection or the SDK's credential chain.

    Airflow retries it: the chain may find credentials on a later try (a CVM role's metadata
    service can fail to answer for a moment).  Keys that are set wrongly on the connection raise
    the subclass :class:`MpsConnectionConfigError` instead, which is not retried.
    """


class MpsConnectionConfigError(AirflowFailException, MpsCredentialsError):
    """
    The connection's keys are set wrongly (a SecretId without a SecretKey, a token without keys, ...).

    Subclasses :class:`~airflow.exceptions.AirflowFailException` so the task fails without
    retries: a connection does not change between the tries of one task run.
    """


class MpsInvalidParameterError(AirflowFailException, MpsError):
    """
    A request field breaks a rule the service enforces; refused before anything was sent.

    Subclasses :class:`~airflow.exceptions.AirflowFailException` so the task fails without
    retries: the same input will not get better.

    :param field: the request or operator field at fault, e.g. ``prompt``.
    :param rule: the rule it breaks, as a sentence fragment.
    :param value: the offending value; shown truncated.
    """

    def __init__(self, field: str, rule: str, value: object = None) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"Invalid {field} {shown}: {rule}")


class MpsTaskFailedError(MpsError):
    """
    The MPS task ended in ``FAIL``.

    :param task_id: the MPS TaskId.
    :param message: the service's failure ``Message``.
    :param request_id: RequestId of the describe call that reported the failure.
    """

    def __init__(self, task_id: str, message: str | None, request_id: str | None = None) -> None:
        self.task_id = task_id
        self.message = message
        self.request_id = request_id
        super().__init__(
            f"MPS task {task_id} failed: {message or 'no message'} (RequestId: {request_id or 'none'})"
        )

    def __reduce__(self):
        return (type(self), (self.task_id, self.message, self.request_id))


class MpsTaskTimeoutError(MpsError):
    """Waiting for an MPS task took longer than the configured ``timeout``."""
