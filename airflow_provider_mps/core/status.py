"""
The one status vocabulary of the provider.

What the service reports, what the provider adds, and what a trigger event says.  Operators, the
sensor, the triggers and the transfer all read it.
"""

from __future__ import annotations

from enum import Enum


class MpsAigcImageTaskStatus(str, Enum):
    """Status of an MPS AIGC image task, as ``DescribeAigcImageTask`` reports it."""

    WAIT = "WAIT"
    RUN = "RUN"
    DONE = "DONE"
    FAIL = "FAIL"

    @classmethod
    def is_terminal(cls, status: str | None) -> bool:
        """Return whether ``status`` (an enum member or the API's string) is final."""
        return _value(status) in _TERMINAL_VALUES


class LocalStatus(str, Enum):
    """
    Statuses the provider gives a stored TaskId that the service reports no status for.

    Never sent by MPS: ``NOT_FOUND`` is a TaskId the service does not know (``ResourceNotFound``);
    ``OTHER_REQUEST`` is a stored TaskId created for another rendered request than this try's.
    """

    NOT_FOUND = "NOT_FOUND"
    OTHER_REQUEST = "OTHER_REQUEST"


class TriggerEventStatus(str, Enum):
    """The ``status`` of a trigger event; anything else is rejected when the task resumes."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"


def _value(status: object) -> object:
    return status.value if isinstance(status, Enum) else status


#: Statuses a task never leaves.
TERMINAL_STATUSES: frozenset[MpsAigcImageTaskStatus] = frozenset(
    {MpsAigcImageTaskStatus.DONE, MpsAigcImageTaskStatus.FAIL}
)
#: Terminal statuses that mean the images are ready.
SUCCESS_STATUSES: frozenset[MpsAigcImageTaskStatus] = frozenset({MpsAigcImageTaskStatus.DONE})
#: Statuses after which a TaskId is no longer polled: terminal, or unknown to the service.
FINAL_STATUSES: frozenset[str] = frozenset(
    {MpsAigcImageTaskStatus.DONE.value, MpsAigcImageTaskStatus.FAIL.value, LocalStatus.NOT_FOUND.value}
)
#: The values of the trigger event statuses.
EVENT_STATUSES: frozenset[str] = frozenset(status.value for status in TriggerEventStatus)

_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)


def is_final(status: object) -> bool:
    """Whether a TaskId with ``status`` is no longer polled: ``DONE``, ``FAIL`` or ``NOT_FOUND``."""
    return _value(status) in FINAL_STATUSES


def is_done(status: object) -> bool:
    """Whether ``status`` means the images are ready (``DONE``)."""
    return _value(status) == MpsAigcImageTaskStatus.DONE.value


def is_failed(status: object) -> bool:
    """Whether ``status`` is the service's ``FAIL`` (which costs nothing: MPS bills only images made)."""
    return _value(status) == MpsAigcImageTaskStatus.FAIL.value
