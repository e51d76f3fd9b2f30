"""
Checks on ``CreateAigcImageTask`` requests, run before anything is sent.

One function set shared by every submitter (the single-task operator, batch submitters):

* :func:`build_aigc_image_request` turns rendered field values into the keyword arguments of
  :meth:`~airflow_provider_mps.hooks.mps.MpsHook.submit_aigc_image_task`, or raises
  :class:`~airflow_provider_mps.exceptions.MpsInvalidParameterError` naming the field, the value
  and the rule.
* :func:`validate_literal_aigc_image_fields` runs the same checks at DAG parse time on the values
  that are already final (no Jinja, no ``XComArg``), so an obviously wrong DAG is an import error;
  :func:`check_literal_fields` is its per-process memory, which the operators call.
* :func:`check_wait`, :func:`check_seconds` and :func:`check_rate_limit` check the operators' own knobs.

Parsing a DAG file loads this module (for the literal checks) but not the exceptions module,
which is imported only when a value is refused.

Values coming out of templates are accepted in the shapes templates produce: numbers where text
belongs become text, ``"true"``/``"false"`` become booleans, digit strings become integers, and
structured fields may be JSON strings (``{{ params.urls | tojson }}``) or native objects
(``render_template_as_native_obj=True``).  Anything else of the wrong type is refused by name.

Each field's own rule is in :mod:`airflow_provider_mps.core.fields`; this module combines them
(a prompt or a reference image, a model's limits).  Known model limits come from
:mod:`airflow_provider_mps.capabilities`.  Two kinds of rule:

* **Hard rules** from the API reference are always errors before sending: the prompt's length,
  URL schemes, reference image formats and counts for a known model version, the shapes of the
  JSON fields, and the COS field pairs.
* **Enumerations** copied from today's documentation (model names and versions, aspect ratios,
  resolutions, output formats, scene types) change without notice.  A value outside them is sent
  with a WARNING and the service decides, unless the caller asks for ``strict`` checks, which
  refuse it like a hard rule.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.capabilities import KNOWN_MODEL_NAMES, get_model_capabilities
from airflow_provider_mps.core import fields as field_rules
from airflow_provider_mps.core.fields import is_literal

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

    from airflow_provider_mps.capabilities import ModelCapabilities

log = logging.getLogger(__name__)

#: Request fields, in the hook's snake_case spelling, mapped to the service's names.
AIGC_IMAGE_REQUEST_FIELDS: Mapping[str, str] = {
    "model_name": "ModelName",
    "model_version": "ModelVersion",
    "scene_type": "SceneType",
    "prompt": "Prompt",
    "negative_prompt": "NegativePrompt",
    "enhance_prompt": "EnhancePrompt",
    "image_infos": "ImageInfos",
    "output_image_count": "OutputImageCount",
    "extra_parameters": "ExtraParameters",
    "additional_parameters": "AdditionalParameters",
    "store_cos_param": "StoreCosParam",
    "operator": "Operator",
}
_FIELD_BY_API_NAME = {api: field for field, api in AIGC_IMAGE_REQUEST_FIELDS.items()}


def _canonical(fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    canonical: dict[str, Any] = {}
    for key, value in fields.items():
        name = key if key in AIGC_IMAGE_REQUEST_FIELDS else _FIELD_BY_API_NAME.get(key)
        if name is None:
            raise field_rules.invalid(
                f"{where}{key}",
                f"is not a CreateAigcImageTask field; the fields are {', '.join(AIGC_IMAGE_REQUEST_FIELDS)}",
                value,
            )
        if value is not None:  # None means "not given", exactly like a missing key
            canonical[name] = value
    return canonical


def _check(fields: Mapping[str, Any], *, where: str, literal_only: bool, strict: bool) -> dict[str, Any]:
    values = _canonical(fields, where)
    final = {name: value for name, value in values.items() if not literal_only or is_literal(value)}

    def known(name: str) -> bool:
        return name in final or name not in values

    request = _check_plain_fields(final, where)
    model_name, version = request.get("model_name"), request.get("model_version")
    model = get_model_capabilities(model_name) if known("model_name") else None
    version_known = known("model_version")
    if known("model_name"):
        _check_model(where, model_name, version if version_known else None, model, strict, literal_only)

    if "extra_parameters" in final:
        request["extra_parameters"] = field_rules.extra_parameters(
            where + "extra_parameters", final["extra_parameters"], model, strict=strict, quiet=literal_only
        )
    if "additional_parameters" in final:
        request["additional_parameters"] = field_rules.additional_parameters(
            where + "additional_parameters",
            final["additional_parameters"],
            model,
            version if version_known else None,
        )

    if (
        known("prompt")
        and known("image_infos")
        and not request.get("prompt")
        and not request.get("image_infos")
    ):
        raise field_rules.invalid(
            where + "prompt", "a prompt or at least one reference image (image_infos) is required", None
        )
    if model is not None:
        _check_against_model(request, where, model, version_known, strict=strict, quiet=literal_only)
    return {name: value for name, value in request.items() if value is not None}


def _check_plain_fields(final: Mapping[str, Any], where: str) -> dict[str, Any]:
    """
    Check and normalise the fields whose rules do not depend on the model.

    :param final: the canonical fields to check (at parse time, the literal ones only).
    :param where: prefix for field names in error messages.
    :return: the normalised values, by snake_case name.
    :raises MpsInvalidParameterError: naming the first field that breaks a rule.
    """
    request: dict[str, Any] = {}
    for name in ("model_name", "model_version", "scene_type", "negative_prompt", "operator"):
        if name in final:
            request[name] = field_rules.text(where + name, final[name])
    if "prompt" in final:
        request["prompt"] = field_rules.prompt_text(where + "prompt", final["prompt"])
    if "enhance_prompt" in final:
        request["enhance_prompt"] = field_rules.boolean(where + "enhance_prompt", final["enhance_prompt"])
    if "output_image_count" in final:
        request["output_image_count"] = field_rules.positive_int(
            where + "output_image_count", final["output_image_count"]
        )
    if "image_infos" in final:
        request["image_infos"] = field_rules.image_infos(where + "image_infos", final["image_infos"])
    if "store_cos_param" in final:
        request["store_cos_param"] = field_rules.store_cos_param(
            where + "store_cos_param", final["store_cos_param"]
        )
    return request


def _check_against_model(
    request: Mapping[str, Any],
    where: str,
    model: ModelCapabilities,
    version_known: bool,
    *,
    strict: bool,
    quiet: bool,
) -> None:
    """
    Check the reference images and the scene type of a request against its model's documented limits.

    :param request: the normalised request fields.
    :param where: prefix for field names in error messages.
    :param model: the capabilities of the request's model.
    :param version_known: whether the model version is final (not resolved at run time).
    :param strict: refuse an undocumented scene type instead of warning.
    :param quiet: log nothing (parse-time checks).
    :raises MpsInvalidParameterError: naming the field that breaks a rule.
    """
    images, version = request.get("image_infos"), request.get("model_version")
    if images and version_known:
        limit = model.reference_image_limit(version)
        if limit is not None and len(images) > limit:
            named = f"{model.name} {version}" if version else model.name
            raise field_rules.invalid(
                where + "image_infos",
                f"may hold at most {limit} reference image{'s' if limit > 1 else ''} for {named}, "
                f"got {len(images)}",
                [info["ImageUrl"] for info in images],
            )
    scene_type = request.get("scene_type")
    if scene_type is not None and scene_type not in model.scene_types:
        documented = ", ".join(model.scene_types) or "none"
        rule = f"must be a scene type documented for {model.name} ({documented})"
        field_rules.unlisted(where + "scene_type", rule, scene_type, strict=strict, quiet=quiet)


def _check_model(
    where: str,
    name: str | None,
    version: str | None,
    model: ModelCapabilities | None,
    strict: bool,
    quiet: bool,
) -> None:
    """Model names and versions are enumerations: an unknown one is sent with a warning (unless strict)."""
    if name is not None and model is None:
        rule = f"must be a model this provider knows ({', '.join(KNOWN_MODEL_NAMES)})"
        field_rules.unlisted(where + "model_name", rule, name, strict=strict, quiet=quiet)
    elif model is not None and version is not None and version not in model.versions:
        rule = (
            f"must be a version of {model.name} this provider knows ({', '.join(model.versions)}); "
            "no reference-image limit is checked for it"
        )
        field_rules.unlisted(where + "model_version", rule, version, strict=strict, quiet=quiet)


def build_aigc_image_request(
    fields: Mapping[str, Any], *, where: str = "", strict: bool = False
) -> dict[str, Any]:
    """
    Validate rendered request fields and return the hook's keyword arguments.

    :param fields: field values keyed by the hook's snake_case names (``prompt``,
        ``image_infos``, ...) or the service's names (``Prompt``, ``ImageInfos``, ...).
    :param where: prefix for field names in error messages, e.g. ``"requests[3]."``.
    :param strict: refuse values outside today's documented enumerations (model names and
        versions, aspect ratios, resolutions, output formats, scene types) instead of sending
        them with a WARNING.
    :return: keyword arguments for ``MpsHook.submit_aigc_image_task``: snake_case keys, values
        normalised (``image_infos`` as ``[{"ImageUrl": ...}]``, nested keys in the service's
        spelling, ``additional_parameters`` as a dict), ``None`` and blank values left out.
    :raises MpsInvalidParameterError: naming the first field that breaks a rule.
    """
    return _check(fields, where=where, literal_only=False, strict=strict)


def to_api_params(request: Mapping[str, Any]) -> dict[str, Any]:
    """
    Rename a request built by :func:`build_aigc_image_request` to the API's names: the parameters sent.

    :param request: a validated request (snake_case keys, nested keys already in the API's spelling).
    :return: ``CreateAigcImageTask`` parameters, ``AdditionalParameters`` as its JSON string.
    """
    params = {AIGC_IMAGE_REQUEST_FIELDS[name]: value for name, value in request.items()}
    if "AdditionalParameters" in params:
        params["AdditionalParameters"] = json.dumps(
            params["AdditionalParameters"], ensure_ascii=False, separators=(",", ":")
        )
    return params


def build_create_params(
    fields: Mapping[str, Any], *, where: str = "", strict: bool = False
) -> dict[str, Any]:
    """
    Validate request fields and return the ``CreateAigcImageTask`` parameters to send.

    :func:`build_aigc_image_request` then :func:`to_api_params`: the one path from fields to a request.

    :param fields: as for :func:`build_aigc_image_request`.
    :param where: prefix for field names in error messages.
    :param strict: refuse values outside today's documented enumerations.
    :raises MpsInvalidParameterError: naming the first field that breaks a rule.
    """
    return to_api_params(build_aigc_image_request(fields, where=where, strict=strict))


def validate_literal_aigc_image_fields(
    fields: Mapping[str, Any], *, where: str = "", strict: bool = False
) -> None:
    """
    Run :func:`build_aigc_image_request`'s checks on the values that are final at parse time.

    Fields holding Jinja or an ``XComArg`` are skipped, and so are the cross-field rules that
    depend on them; nothing is logged (warnings about undocumented values wait for the run).

    :param fields: operator arguments as written in the DAG file.
    :param where: prefix for field names in error messages.
    :param strict: refuse values outside today's documented enumerations (see
        :func:`build_aigc_image_request`).
    :raises MpsInvalidParameterError: naming the first literal field that breaks a rule.
    """
    _check(fields, where=where, literal_only=True, strict=strict)


def check_seconds(field: str, value: object, *, minimum: float | None = None) -> None:
    """
    Refuse ``value`` unless it is a number of seconds above 0 (or, with ``minimum``, at least that).

    :param field: the argument's name, e.g. ``poll_interval``, named in the error.
    :param value: the value given.
    :param minimum: the smallest value allowed, or ``None`` for "greater than 0".
    :raises MpsInvalidParameterError: when ``value`` breaks the rule (``True`` is not a number).
    """
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if minimum is None and not (is_number and value > 0):  # type: ignore[operator]
        raise field_rules.invalid(field, "must be a number of seconds greater than 0", value)
    if minimum is not None and not (is_number and value >= minimum):  # type: ignore[operator]
        raise field_rules.invalid(field, f"must be a number of seconds, {minimum:g} or more", value)


def check_rate_limit(value: object, *, optional: bool = False) -> None:
    """
    Refuse a ``rate_limit`` that is not a number of requests per second greater than 0.

    :param value: the value given.
    :param optional: whether ``None`` (no limit of its own) is allowed.
    :raises MpsInvalidParameterError: naming ``rate_limit`` when ``value`` breaks the rule.
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        rule = "must be a number of requests per second greater than 0" + (", or None" if optional else "")
        raise field_rules.invalid("rate_limit", rule, value)


def check_wait(poll_interval: object, timeout: object, rate_limit: object = None) -> None:
    """
    Refuse bad knobs of a wait: ``poll_interval``, ``timeout`` (``None``: none) and ``rate_limit``.

    :param poll_interval: seconds between two polls, above 0.
    :param timeout: seconds to wait, above 0, or ``None`` to wait for ever.
    :param rate_limit: requests per second above 0, or ``None`` when the caller has no such knob.
    :raises MpsInvalidParameterError: naming the first knob that breaks its rule.
    """
    check_seconds("poll_interval", poll_interval)
    if timeout is not None:
        check_seconds("timeout", timeout)
    if rate_limit is not None:
        check_rate_limit(rate_limit)


# Parse-time checks of literal request fields, remembered for the configurations already seen.
#
# A DAG file usually repeats one configuration across its operators (the same model, the same
# ``extra_parameters``) while the prompt is templated or mapped, and the DAG processor parses the
# file again and again.  :func:`check_literal_fields` runs validate_literal_aigc_image_fields once
# per distinct configuration and process: the outcome depends only on the literal values and on
# *which* fields hold something resolved at run time, which is exactly the cache key.

#: Stands for a value resolved at run time (Jinja text, an ``XComArg``, ...): never inspected.
_RUN_TIME = ("<run time>",)
#: Configurations remembered per process before the memory is cleared.
_MAX_REMEMBERED = 4096

_passed_literal_keys: set[Hashable] = set()


def _literal_key(value: Any) -> Hashable:
    """A hashable image of ``value`` that tells literal values apart exactly (``1`` from ``True``)."""
    # List comprehensions and explicit tests, not generators: this runs for every operator parsed.
    if isinstance(value, str):
        return _RUN_TIME if "{{" in value or "{%" in value or "{#" in value else value
    if value is None or isinstance(value, (bool, int, float)):
        return (type(value), value)
    if isinstance(value, dict):
        return (
            dict,
            tuple(
                [
                    (key if isinstance(key, str) else (type(key), key), _literal_key(item))
                    for key, item in value.items()
                ]
            ),
        )
    if isinstance(value, (list, tuple)):
        return (type(value), tuple([_literal_key(item) for item in value]))
    return _RUN_TIME


def check_literal_fields(fields: Mapping[str, Any], *, where: str = "", strict: bool = False) -> None:
    """
    Validate the literal values of ``fields`` as at DAG parse time, once per distinct configuration.

    :param fields: request fields as written in the DAG file; ``None`` means "not given".
    :param where: prefix for field names in error messages.
    :param strict: refuse values outside today's documented enumerations.
    :raises MpsInvalidParameterError: naming the first literal field that breaks a rule.
    """
    parts: list[Hashable] = [where, strict]
    for name, value in fields.items():
        if value is not None:
            parts.append(name)
            parts.append(_literal_key(value))
    key: tuple[Hashable, ...] | None = tuple(parts)
    try:
        if key in _passed_literal_keys:
            return
    except TypeError:  # an unhashable literal (a set or similar): checked every time
        key = None
    given = {name: value for name, value in fields.items() if value is not None}
    validate_literal_aigc_image_fields(given, where=where, strict=strict)
    if key is None:
        return
    if len(_passed_literal_keys) >= _MAX_REMEMBERED:
        _passed_literal_keys.clear()
    _passed_literal_keys.add(key)
