"""The check every MPS class runs on its ``poll_interval`` and ``timeout`` arguments."""

from __future__ import annotations

from airflow_provider_mps.exceptions import MpsInvalidParameterError


def check_positive_seconds(field: str, value: object) -> None:
    """
    Refuse ``value`` unless it is a number of seconds greater than 0.

    :param field: the argument's name, e.g. ``poll_interval``, named in the error.
    :param value: the value given.
    :raises MpsInvalidParameterError: when ``value`` is not a number above 0 (``True`` is not a number).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise MpsInvalidParameterError(field, "must be a number of seconds greater than 0.", value)
