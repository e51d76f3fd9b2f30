"""Errors the emulator answers with, named exactly as Tencent Cloud API 3.0 names them."""

from __future__ import annotations


class MpsServiceError(Exception):
    """
    An error the emulated service returns in the API 3.0 error envelope.

    :param code: the service's error code, e.g. ``AuthFailure.SignatureFailure``.
    :param message: the human-readable message sent along with the code.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InjectedError(MpsServiceError):
    """An error answered because a fault knob (``error_rate`` / ``error_burst``) said so."""

    def __init__(self, code: str) -> None:
        super().__init__(code, f"Injected by the emulator: {code}.")


class AuthFailureError(MpsServiceError):
    """The request's authentication failed (``AuthFailure.<reason>``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"AuthFailure.{reason}", message)


class InvalidActionError(MpsServiceError):
    """The ``X-TC-Action`` names no action of this service."""

    def __init__(self, action: str) -> None:
        super().__init__("InvalidAction", f"The action `{action}` is not supported by the service mps.")


class MissingParameterError(MpsServiceError):
    """A required parameter is absent."""

    def __init__(self, field: str) -> None:
        super().__init__("MissingParameter", f"The request is missing a required parameter `{field}`.")


class InvalidParameterError(MpsServiceError):
    """The request as a whole is malformed (body, content type, API version)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameter", message)


class InvalidParameterValueError(MpsServiceError):
    """
    A parameter has a value the service refuses.

    :param field: the parameter at fault, e.g. ``Prompt`` or ``ImageInfos.0.ImageUrl``.
    :param rule: what the value must be, as a sentence fragment.
    :param sub_code: optional code suffix, e.g. ``ModelName`` gives ``InvalidParameterValue.ModelName``.
    """

    def __init__(self, field: str, rule: str, sub_code: str | None = None) -> None:
        code = f"InvalidParameterValue.{sub_code}" if sub_code else "InvalidParameterValue"
        super().__init__(code, f"The value of parameter `{field}` is invalid: {rule}.")
        self.field = field


class UnknownParameterError(MpsServiceError):
    """The request carries a parameter the action does not define."""

    def __init__(self, field: str) -> None:
        super().__init__("UnknownParameter", f"The parameter `{field}` is not recognized.")


class TaskNotFoundError(MpsServiceError):
    """No task with this TaskId exists for the calling account."""

    def __init__(self, task_id: str) -> None:
        super().__init__("ResourceNotFound.TaskNotFound", f"The task `{task_id}` does not exist.")


class RequestLimitExceededError(MpsServiceError):
    """The caller went over the per-SecretId, per-action request quota."""

    def __init__(self, action: str, rate: float) -> None:
        super().__init__(
            "RequestLimitExceeded",
            f"Your request frequency for {action} exceeds the limit of {rate:g} requests per second.",
        )
