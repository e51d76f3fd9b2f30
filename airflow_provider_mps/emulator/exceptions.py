"""Errors the emulator answers with, named exactly as Tencent Cloud API 3.0 names them."""

from __future__ import annotations

from typing import Any, ClassVar


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


class _NamingError(MpsServiceError):
    """
    An error of one fixed code whose message names the parameter, action or task at fault.

    Subclasses give the code and the message, ``{}`` standing for that name, as class keywords.

    :param name: what the message names, e.g. ``TaskId``.
    """

    _code: ClassVar[str]
    _message: ClassVar[str]

    def __init_subclass__(cls, *, code: str, message: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._code, cls._message = code, message

    def __init__(self, name: str) -> None:
        super().__init__(self._code, self._message.format(name))


class InjectedError(MpsServiceError):
    """An error answered because a fault knob (``error_rate`` / ``error_burst``) said so."""

    def __init__(self, code: str) -> None:
        super().__init__(code, f"Injected by the emulator: {code}.")


class AuthFailureError(MpsServiceError):
    """The request's authentication failed (``AuthFailure.<reason>``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"AuthFailure.{reason}", message)


class InvalidActionError(
    _NamingError, code="InvalidAction", message="The action `{}` is not supported by the service mps."
):
    """The ``X-TC-Action`` names no action of this service."""


class MissingParameterError(
    _NamingError, code="MissingParameter", message="The request is missing a required parameter `{}`."
):
    """A required parameter is absent."""


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


class UnknownParameterError(
    _NamingError, code="UnknownParameter", message="The parameter `{}` is not recognized."
):
    """The request carries a parameter the action does not define."""


class TaskNotFoundError(
    _NamingError, code="ResourceNotFound.TaskNotFound", message="The task `{}` does not exist."
):
    """No task with this TaskId exists for the calling account."""


class RequestLimitExceededError(MpsServiceError):
    """The caller went over the per-SecretId, per-action request quota."""

    def __init__(self, action: str, rate: float) -> None:
        super().__init__(
            "RequestLimitExceeded",
            f"Your request frequency for {action} exceeds the limit of {rate:g} requests per second.",
        )
