"""
The emulator's knobs: timing, quota and fault injection, all changeable while it runs.

Fault knobs take either one value for every API action or a mapping ``{action: value}``; see
:class:`Knobs`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

#: Pseudo-action naming image downloads, for scoping fault knobs to them.
DOWNLOAD_ACTION = "DownloadImage"
#: Values of the ``Fault`` field of the request and download logs (``None``: nothing happened).
FAULTS = (
    "drop_before_read",
    "html_5xx",
    "error",
    "drop_after_create",
    "malformed_body",
    "client_disconnected",
    "truncated_body",
)


def _fault_knob(default: Any) -> Any:
    """
    Declare a fault knob: a field listed in :data:`SCOPED_KNOBS`, which may be scoped per action.

    :param default: the knob's value when not set, for every action and for downloads.
    """
    return field(default=default, metadata={"scoped": True})


@dataclass
class Knobs:
    """
    Timing, quota and fault-injection settings; all can change while the emulator runs.

    Fault knobs (see :data:`SCOPED_KNOBS`) take either a plain value, applied to every API action,
    or a mapping ``{action: value}``; the key ``"*"`` gives the value for unlisted API actions and
    the action :data:`DOWNLOAD_ACTION` scopes a knob to image downloads (never covered by ``"*"``).

    :param wait_seconds: how long a new task stays ``WAIT``.
    :param run_seconds: how long it then stays ``RUN``.
    :param fail_rate: probability that a task ends ``FAIL`` instead of ``DONE``.
    :param image_ttl_seconds: how long after ``DONE`` the image URLs keep answering (then 404).
    :param rate_limit: requests per second allowed per SecretId and action (0 disables the limit).
    :param clock_offset_seconds: added to the server clock when checking request timestamps.
    :param seed: seeds the random choices of the ``*_rate`` knobs, for reproducible runs.
    :param error_rate: probability that a call fails with ``error_code``.
    :param error_code: the code of injected errors, e.g. ``InternalError`` or ``RequestLimitExceeded``.
    :param error_burst: the next N calls fail with ``error_code`` (counts down).
    :param latency_seconds: delay added before answering.
    :param drop_before_read_rate: probability of closing the connection before reading the request.
    :param drop_after_create_rate: probability of handling the call (a create call creates its task)
        and then closing the connection without answering.
    :param malformed_body_rate: probability of handling the call and answering 200 with a body
        that is not JSON under ``Content-Type: application/json``.
    :param html_5xx_rate: probability of answering HTTP 502 with an HTML page, without handling the call.
    """

    wait_seconds: float = 1.0
    run_seconds: float = 3.0
    fail_rate: float = 0.0
    image_ttl_seconds: float = 43200.0
    rate_limit: float = 20.0
    clock_offset_seconds: float = 0.0
    seed: int | None = None
    error_rate: Any = _fault_knob(0.0)
    error_code: Any = _fault_knob("InternalError")
    error_burst: Any = _fault_knob(0)
    latency_seconds: Any = _fault_knob(0.0)
    drop_before_read_rate: Any = _fault_knob(0.0)
    drop_after_create_rate: Any = _fault_knob(0.0)
    malformed_body_rate: Any = _fault_knob(0.0)
    html_5xx_rate: Any = _fault_knob(0.0)

    def scoped(self, name: str, action: str) -> Any:
        """Return the value of fault knob ``name`` that applies to ``action``."""
        value = getattr(self, name)
        default = Knobs.__dataclass_fields__[name].default
        if isinstance(value, dict):
            if action in value:
                return value[action]
            return default if action == DOWNLOAD_ACTION else value.get("*", default)
        return default if action == DOWNLOAD_ACTION else value

    def updated(self, changes: dict[str, Any]) -> Knobs:
        """
        Return a copy with ``changes`` applied.

        :raises ValueError: for an unknown knob or a value of the wrong type.
        """
        names = {f.name for f in fields(self)}
        result = copy.deepcopy(self)
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"Unknown emulator knob {name!r}; the knobs are {', '.join(sorted(names))}.")
            if name == "seed":
                if value is not None and not isinstance(value, int):
                    raise ValueError(f"Knob 'seed' must be an integer or null, not {value!r}.")
            elif name in SCOPED_KNOBS and isinstance(value, dict):
                for action, item in value.items():
                    _check_knob_value(f"{name}[{action!r}]", name, item)
            else:
                _check_knob_value(name, name, value)
            setattr(result, name, copy.deepcopy(value))
        return result


#: Fault knobs, in declaration order; each takes one value for every API action, or a mapping of
#: action name to value.
SCOPED_KNOBS = tuple(knob.name for knob in fields(Knobs) if knob.metadata.get("scoped"))


def _check_knob_value(label: str, name: str, value: Any) -> None:
    if name == "error_code":
        if not isinstance(value, str) or not value:
            raise ValueError(f"Knob {label} must be a non-empty error code string, not {value!r}.")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Knob {label} must be a number, not {value!r}.")
    if name == "error_burst" and (not isinstance(value, int) or value < 0):
        raise ValueError(f"Knob {label} must be a whole number of calls (0 or more), not {value!r}.")
    if name.endswith("_rate") and name != "rate_limit" and not 0 <= value <= 1:
        raise ValueError(f"Knob {label} is a probability and must lie between 0 and 1, not {value!r}.")
    if name != "clock_offset_seconds" and value < 0:
        raise ValueError(f"Knob {label} must not be negative, not {value!r}.")
