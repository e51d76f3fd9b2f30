"""
Parse-time checks of literal request fields, remembered for the configurations already seen.

A DAG file usually repeats one configuration across its operators (the same model, the same
``extra_parameters``) while the prompt is templated or mapped, and the DAG processor parses the
file again and again.  :func:`check_literal_fields` runs
:func:`~airflow_provider_mps.validation.validate_literal_aigc_image_fields` once per distinct
configuration and process: the outcome of that check depends only on the literal values and on
*which* fields hold something resolved at run time, which is exactly the cache key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mps.validation import validate_literal_aigc_image_fields

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

#: Stands for a value resolved at run time (Jinja text, an ``XComArg``, ...): never inspected.
_RUN_TIME = ("<run time>",)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
#: Configurations remembered per process before the memory is cleared.
_MAX_REMEMBERED = 4096

_passed: set[Hashable] = set()


def _key(value: Any) -> Hashable:
    """A hashable image of ``value`` that tells literal values apart exactly (``1`` from ``True``)."""
    if isinstance(value, str):
        return _RUN_TIME if any(marker in value for marker in _TEMPLATE_MARKERS) else value
    if value is None or isinstance(value, (bool, int, float)):
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_key(item) for item in value))
    if isinstance(value, dict):
        return (
            dict,
            tuple(
                (key if isinstance(key, str) else (type(key), key), _key(item)) for key, item in value.items()
            ),
        )
    return _RUN_TIME


def check_literal_fields(fields: Mapping[str, Any], *, where: str = "") -> None:
    """
    Validate the literal values of ``fields`` as at DAG parse time, once per distinct configuration.

    :param fields: request fields as written in the DAG file; ``None`` means "not given".
    :param where: prefix for field names in error messages.
    :raises MpsInvalidParameterError: naming the first literal field that breaks a rule.
    """
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        key: Hashable = (where, tuple((name, _key(value)) for name, value in given.items()))
        hash(key)
    except TypeError:  # an unhashable literal (a float NaN is fine; this is a set or similar)
        validate_literal_aigc_image_fields(given, where=where)
        return
    if key in _passed:
        return
    validate_literal_aigc_image_fields(given, where=where)
    if len(_passed) >= _MAX_REMEMBERED:
        _passed.clear()
    _passed.add(key)
