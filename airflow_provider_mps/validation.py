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
* :func:`check_seconds` and :func:`check_rate_limit` check the operators' own knobs.

Parsing a DAG file loads this module (for the literal checks) but not the exceptions module,
which is imported only when a value is refused.

Values coming out of templates are accepted in the shapes templates produce: numbers where text
belongs become text, ``"true"``/``"false"`` become booleans, digit strings become integers, and
structured fields may be JSON strings (``{{ params.urls | tojson }}``) or native objects
(``render_template_as_native_obj=True``).  Anything else of the wrong type is refused by name.

Known model limits come from :mod:`airflow_provider_mps.capabilities`.  Two kinds of rule:

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
import mimetypes
import posixpath
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_provider_mps.capabilities import (
    ALL_RESOLUTIONS,
    EXTRA_PARAMETER_KEYS,
    IMAGE_INFO_KEYS,
    KNOWN_MODEL_NAMES,
    LOGO_ADD_VALUES,
    MAX_PROMPT_CHARACTERS,
    OUTPUT_FORMATS,
    STORE_COS_KEYS,
    get_model_capabilities,
)

if TYPE_CHECKING:
    from collections.abc import Hashable

    from airflow_provider_mps.capabilities import ModelCapabilities
    from airflow_provider_mps.exceptions import MpsInvalidParameterError

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


_SUPPORTED_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp"})
# Patterns, compiled by ``re`` on first use (and cached there): not on every DAG parse.
_ASPECT_RATIO = r"[1-9][0-9]*:[1-9][0-9]*"
_SIZE = r"\s*([0-9]+)\s*[xX*]\s*([0-9]+)\s*"
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def _invalid(field: str, rule: str, value: object) -> MpsInvalidParameterError:
    """The error for ``field``: ``rule`` is a sentence fragment (``"must be ..."``) closed here."""
    # Imported when a value is refused: a DAG file whose arguments pass never loads the module.
    from airflow_provider_mps.exceptions import MpsInvalidParameterError

    return MpsInvalidParameterError(field, rule + ".", value)


def _unlisted(field: str, rule: str, value: object, *, strict: bool, quiet: bool) -> None:
    """
    Handle a value outside an enumeration the documentation lists today.

    Strict checks refuse it like a hard rule; otherwise it is sent unchanged with a WARNING (none
    when ``quiet``, at DAG parse time: the run warns) and the service decides.
    """
    if strict:
        raise _invalid(field, rule, value)
    if not quiet:
        log.warning(
            "%s %r is not among the values documented today (%s); sending it unchanged and letting the "
            "service decide. Pass strict_validation=True to refuse such values before sending.",
            field,
            value,
            rule,
        )


def _keys(mapping: Mapping[str, str]) -> str:
    return ", ".join(dict.fromkeys(mapping.values()))


def is_literal(value: object) -> bool:
    """
    Return whether ``value`` is final at DAG parse time: no Jinja markup, no ``XComArg``.

    Plain data (text, numbers, booleans, ``None``, lists and dicts of them) is literal; any other
    object (an ``XComArg``, an ``ObjectStoragePath``, ...) is resolved at run time, so it is not.

    :param value: an operator argument as written in the DAG file.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return not any(marker in value for marker in _TEMPLATE_MARKERS)
    if isinstance(value, (list, tuple)):
        return all(is_literal(item) for item in value)
    if isinstance(value, dict):
        return all(is_literal(item) for item in value.values())
    return False


def _type_name(value: object) -> str:
    return type(value).__name__


def _text(field: str, value: object) -> str | None:
    """Text field: ``None`` and blank text mean "not given"; numbers from templates become text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _invalid(field, f"must be a string, got {_type_name(value)}", value)
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _boolean(field: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if not lowered:
            return None
    raise _invalid(field, "must be a boolean (true or false)", value)


def _positive_int(field: str, value: object) -> int | None:
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, str) and not value.strip():
        return None
    if number is None or number < 1:
        raise _invalid(field, "must be a positive integer", value)
    return number


def _structure(field: str, value: object, expected: type, shape: str) -> Any:
    """Accept ``expected`` (dict or list) natively or as a JSON string; blank text means "not given"."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid(
                field, f"must be {shape} or a JSON string of one, got text that is not JSON", value
            ) from None
    if isinstance(value, tuple) and expected is list:
        value = list(value)
    if not isinstance(value, expected):
        raise _invalid(field, f"must be {shape}, got {_type_name(value)}", value)
    return value


def _rename_keys(field: str, value: Mapping[Any, Any], names: Mapping[str, str]) -> dict[str, Any]:
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        name = names.get(key) if isinstance(key, str) else None
        if name is None:
            raise _invalid(field, f"has the unknown key {key!r}; the known keys are {_keys(names)}", value)
        if item is not None and not (isinstance(item, str) and not item.strip()):
            if name in renamed:
                raise _invalid(field, f"sets {name} twice", value)
            renamed[name] = item
    return renamed


def _prompt(field: str, value: object) -> str | None:
    prompt = _text(field, value)
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARACTERS:
        raise _invalid(
            field, f"must be at most {MAX_PROMPT_CHARACTERS} characters long, got {len(prompt)}", prompt
        )
    return prompt


def _image_url(field: str, value: object) -> str:
    url = _text(field, value)
    if url is None:
        raise _invalid(field, "must be an http(s) URL of a reference image", value)
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _invalid(field, "must be an http(s) URL of a reference image", url)
    extension = posixpath.splitext(unquote(parts.path))[1].lower()
    if extension and extension not in _SUPPORTED_IMAGE_EXTENSIONS:
        guessed, _ = mimetypes.guess_type("image" + extension, strict=False)
        if guessed is not None and guessed.startswith("image/"):
            raise _invalid(
                field,
                f"must name a jpeg, png or webp image; the URL names a {extension} file",
                url,
            )
    return url


def _image_infos(field: str, value: object) -> list[dict[str, Any]] | None:
    shape = "a list of image URLs or ImageInfo dicts"
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        # A JSON document from a template, or one URL on its own.
        value = _structure(field, value, object, shape) if value.lstrip()[:1] in ("[", "{") else [value]
    if isinstance(value, Mapping):
        value = [value]
    items = _structure(field, value, list, shape)
    infos: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if item is None or (isinstance(item, str) and not item.strip()):
            continue
        if isinstance(item, Mapping):
            info = _rename_keys(where, item, IMAGE_INFO_KEYS)
            if "ImageUrl" not in info:
                raise _invalid(where, "needs an ImageUrl", dict(item))
            info["ImageUrl"] = _image_url(f"{where}.ImageUrl", info["ImageUrl"])
            if "ReferenceType" in info:
                info["ReferenceType"] = _text(f"{where}.ReferenceType", info["ReferenceType"])
            infos.append(info)
        elif isinstance(item, str):
            infos.append({"ImageUrl": _image_url(where, item)})
        else:
            raise _invalid(where, f"must be an image URL or an ImageInfo dict, got {_type_name(item)}", item)
    return infos or None


def _logo_add(field: str, value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    if isinstance(value, int) and value in LOGO_ADD_VALUES:
        return value
    raise _invalid(field, "must be 0 (no watermark) or 1 (add the watermark)", value)


def _extra_parameters(
    field: str, value: object, model: ModelCapabilities | None, *, strict: bool, quiet: bool
) -> dict[str, Any] | None:
    if value is None:
        return None
    raw = _structure(field, value, dict, "a dict of AspectRatio, Resolution, LogoAdd, OutputFormat")
    extra = _rename_keys(field, raw, EXTRA_PARAMETER_KEYS)
    if "AspectRatio" in extra:
        where = f"{field}.AspectRatio"
        ratio = _text(where, extra["AspectRatio"])
        if model is not None and model.aspect_ratios is not None and ratio not in model.aspect_ratios:
            rule = f"must be one of {', '.join(model.aspect_ratios)} for {model.name}"
            _unlisted(where, rule, ratio, strict=strict, quiet=quiet)
        elif not re.fullmatch(_ASPECT_RATIO, ratio or ""):
            _unlisted(where, "must be a width:height ratio such as 16:9", ratio, strict=strict, quiet=quiet)
        extra["AspectRatio"] = ratio
    if "Resolution" in extra:
        where = f"{field}.Resolution"
        resolution = _text(where, extra["Resolution"])
        resolutions = model.resolutions if model is not None else ALL_RESOLUTIONS
        if resolution not in resolutions:
            suffix = f" for {model.name}" if model is not None else ""
            rule = f"must be one of {', '.join(resolutions)}{suffix}"
            _unlisted(where, rule, resolution, strict=strict, quiet=quiet)
        extra["Resolution"] = resolution
    if "LogoAdd" in extra:
        extra["LogoAdd"] = _logo_add(f"{field}.LogoAdd", extra["LogoAdd"])
    if "OutputFormat" in extra:
        where = f"{field}.OutputFormat"
        output_format = _text(where, extra["OutputFormat"])
        if output_format not in OUTPUT_FORMATS:
            rule = f"must be one of {', '.join(OUTPUT_FORMATS)}"
            _unlisted(where, rule, output_format, strict=strict, quiet=quiet)
        extra["OutputFormat"] = output_format
    return extra or None


def _check_size(
    field: str, size: object, rule: tuple[int | None, int | None, int | None, int | None], model: str
) -> None:
    min_side, max_side, min_pixels, max_pixels = rule
    match = re.fullmatch(_SIZE, size) if isinstance(size, str) else None
    if match is None:
        raise _invalid(field, f"must be WIDTHxHEIGHT in pixels for {model}", size)
    width, height = int(match.group(1)), int(match.group(2))
    if (
        min_side is not None
        and max_side is not None
        and not (min_side <= width <= max_side and min_side <= height <= max_side)
    ):
        raise _invalid(
            field, f"must have width and height between {min_side} and {max_side} pixels for {model}", size
        )
    pixels = width * height
    if (min_pixels is not None and pixels < min_pixels) or (max_pixels is not None and pixels > max_pixels):
        bounds = f"at most {max_pixels}" if min_pixels is None else f"between {min_pixels} and {max_pixels}"
        raise _invalid(field, f"must have width x height {bounds} pixels for {model}, got {pixels}", size)


def _additional_parameters(
    field: str, value: object, model: ModelCapabilities | None, version: str | None
) -> dict[str, Any] | None:
    if value is None:
        return None
    parameters = _structure(field, value, dict, "a JSON object (dict)")
    try:
        json.dumps(parameters)
    except (TypeError, ValueError):
        raise _invalid(field, "must hold only JSON values", parameters) from None
    if model is not None and version is not None and "size" in parameters:
        rule = model.size_rule.get(version)
        if rule is not None:
            _check_size(f"{field}.size", parameters["size"], rule, f"{model.name} {version}")
    return parameters or None


def _store_cos_param(field: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    raw = _structure(field, value, dict, "a dict with CosBucketName and CosBucketRegion")
    cos = {
        key: _text(f"{field}.{key}", item) for key, item in _rename_keys(field, raw, STORE_COS_KEYS).items()
    }
    cos = {key: item for key, item in cos.items() if item is not None}
    if not cos:
        return None
    missing = [key for key in ("CosBucketName", "CosBucketRegion") if key not in cos]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise _invalid(
            field,
            f"needs CosBucketName and CosBucketRegion together; {' and '.join(missing)} {verb} missing",
            raw,
        )
    return cos


def _canonical(fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    canonical: dict[str, Any] = {}
    for key, value in fields.items():
        name = key if key in AIGC_IMAGE_REQUEST_FIELDS else _FIELD_BY_API_NAME.get(key)
        if name is None:
            raise _invalid(
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

    request: dict[str, Any] = {}
    for name in ("model_name", "model_version", "scene_type", "negative_prompt", "operator"):
        if name in final:
            request[name] = _text(where + name, final[name])
    if "prompt" in final:
        request["prompt"] = _prompt(where + "prompt", final["prompt"])
    if "enhance_prompt" in final:
        request["enhance_prompt"] = _boolean(where + "enhance_prompt", final["enhance_prompt"])
    if "output_image_count" in final:
        request["output_image_count"] = _positive_int(
            where + "output_image_count", final["output_image_count"]
        )
    if "image_infos" in final:
        request["image_infos"] = _image_infos(where + "image_infos", final["image_infos"])
    if "store_cos_param" in final:
        request["store_cos_param"] = _store_cos_param(where + "store_cos_param", final["store_cos_param"])

    model_name, version = request.get("model_name"), request.get("model_version")
    model = get_model_capabilities(model_name) if known("model_name") else None
    version_known = known("model_version")
    if known("model_name"):
        _check_model(where, model_name, version if version_known else None, model, strict, literal_only)

    if "extra_parameters" in final:
        request["extra_parameters"] = _extra_parameters(
            where + "extra_parameters", final["extra_parameters"], model, strict=strict, quiet=literal_only
        )
    if "additional_parameters" in final:
        request["additional_parameters"] = _additional_parameters(
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
        raise _invalid(
            where + "prompt", "a prompt or at least one reference image (image_infos) is required", None
        )
    images = request.get("image_infos")
    if images and model is not None and version_known:
        limit = model.reference_image_limit(version)
        if limit is not None and len(images) > limit:
            named = f"{model.name} {version}" if version else model.name
            raise _invalid(
                where + "image_infos",
                f"may hold at most {limit} reference image{'s' if limit > 1 else ''} for {named}, "
                f"got {len(images)}",
                [info["ImageUrl"] for info in images],
            )
    scene_type = request.get("scene_type")
    if scene_type is not None and model is not None and scene_type not in model.scene_types:
        documented = ", ".join(model.scene_types) or "none"
        rule = f"must be a scene type documented for {model.name} ({documented})"
        _unlisted(where + "scene_type", rule, scene_type, strict=strict, quiet=literal_only)
    return {name: value for name, value in request.items() if value is not None}


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
        _unlisted(where + "model_name", rule, name, strict=strict, quiet=quiet)
    elif model is not None and version is not None and version not in model.versions:
        rule = (
            f"must be a version of {model.name} this provider knows ({', '.join(model.versions)}); "
            "no reference-image limit is checked for it"
        )
        _unlisted(where + "model_version", rule, version, strict=strict, quiet=quiet)


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
        raise _invalid(field, "must be a number of seconds greater than 0", value)
    if minimum is not None and not (is_number and value >= minimum):  # type: ignore[operator]
        raise _invalid(field, f"must be a number of seconds, {minimum:g} or more", value)


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
        raise _invalid("rate_limit", rule, value)


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
