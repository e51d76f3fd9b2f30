"""
The rules of each ``CreateAigcImageTask`` field, one function per field.

Each function takes the field's name as errors show it (``requests[3].prompt``) and a rendered
value, and returns the value in the service's shape or raises
:class:`~airflow_provider_mps.exceptions.MpsInvalidParameterError` naming the field, the value and
the rule.  How the fields of one request combine (a prompt or a reference image, a model's limits)
is :mod:`airflow_provider_mps.validation`'s.  Parsing a DAG file loads this module; the exceptions
module is imported only when a value is refused.
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
    LOGO_ADD_VALUES,
    MAX_PROMPT_CHARACTERS,
    OUTPUT_FORMATS,
    STORE_COS_KEYS,
)

if TYPE_CHECKING:
    from airflow_provider_mps.capabilities import ModelCapabilities
    from airflow_provider_mps.exceptions import MpsInvalidParameterError

#: The validation's logger: a value outside today's enumerations is logged there.
log = logging.getLogger("airflow_provider_mps.validation")

_SUPPORTED_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp"})
# Patterns, compiled by ``re`` on first use (and cached there): not on every DAG parse.
_ASPECT_RATIO = r"[1-9][0-9]*:[1-9][0-9]*"
_SIZE = r"\s*([0-9]+)\s*[xX*]\s*([0-9]+)\s*"
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def invalid(field: str, rule: str, value: object) -> MpsInvalidParameterError:
    """The error for ``field``: ``rule`` is a sentence fragment (``"must be ..."``) closed here."""
    # Imported when a value is refused: a DAG file whose arguments pass never loads the module.
    from airflow_provider_mps.exceptions import MpsInvalidParameterError

    return MpsInvalidParameterError(field, rule + ".", value)


def check_count(field: str, value: object, *, minimum: int, what: str = "", none: str = "") -> None:
    """
    Refuse ``value`` unless it is a whole number of at least ``minimum`` (``True`` is not one).

    :param field: the argument's name, named in the error.
    :param value: the value given.
    :param minimum: the smallest count allowed.
    :param what: what is counted, e.g. ``"images"``, or ``""``.
    :param none: what ``None`` means, e.g. ``"no limit"``, when ``None`` is allowed; ``""``: it is not.
    :raises MpsInvalidParameterError: naming ``field`` and the rule.
    """
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        rule = f"must be a whole number{' of ' + what if what else ''}, {minimum} or more"
        raise invalid(field, rule + (f", or None for {none}" if none else ""), value)


def unlisted(field: str, rule: str, value: object, *, strict: bool, quiet: bool) -> None:
    """
    Handle a value outside an enumeration the documentation lists today.

    Strict checks refuse it like a hard rule; otherwise it is sent unchanged with a WARNING (none
    when ``quiet``, at DAG parse time: the run warns) and the service decides.
    """
    if strict:
        raise invalid(field, rule, value)
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


def text(field: str, value: object) -> str | None:
    """Text field: ``None`` and blank text mean "not given"; numbers from templates become text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(field, f"must be a string, got {_type_name(value)}", value)
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def boolean(field: str, value: object) -> bool | None:
    """A boolean field: ``true``/``false`` text from a template is accepted."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if not lowered:
            return None
    raise invalid(field, "must be a boolean (true or false)", value)


def positive_int(field: str, value: object) -> int | None:
    """A whole number of at least 1: digit text from a template is accepted."""
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
        raise invalid(field, "must be a positive integer", value)
    return number


def _structure(field: str, value: object, expected: type, shape: str) -> Any:
    """Accept ``expected`` (dict or list) natively or as a JSON string; blank text means "not given"."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(
                field, f"must be {shape} or a JSON string of one, got text that is not JSON", value
            ) from None
    if isinstance(value, tuple) and expected is list:
        value = list(value)
    if not isinstance(value, expected):
        raise invalid(field, f"must be {shape}, got {_type_name(value)}", value)
    return value


def _rename_keys(field: str, value: Mapping[Any, Any], names: Mapping[str, str]) -> dict[str, Any]:
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        name = names.get(key) if isinstance(key, str) else None
        if name is None:
            raise invalid(field, f"has the unknown key {key!r}; the known keys are {_keys(names)}", value)
        if item is not None and not (isinstance(item, str) and not item.strip()):
            if name in renamed:
                raise invalid(field, f"sets {name} twice", value)
            renamed[name] = item
    return renamed


def prompt_text(field: str, value: object) -> str | None:
    """The prompt: text of at most the service's number of characters."""
    prompt = text(field, value)
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARACTERS:
        raise invalid(
            field, f"must be at most {MAX_PROMPT_CHARACTERS} characters long, got {len(prompt)}", prompt
        )
    return prompt


def _image_url(field: str, value: object) -> str:
    url = text(field, value)
    if url is None:
        raise invalid(field, "must be an http(s) URL of a reference image", value)
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise invalid(field, "must be an http(s) URL of a reference image", url)
    extension = posixpath.splitext(unquote(parts.path))[1].lower()
    if extension and extension not in _SUPPORTED_IMAGE_EXTENSIONS:
        guessed, _ = mimetypes.guess_type("image" + extension, strict=False)
        if guessed is not None and guessed.startswith("image/"):
            raise invalid(
                field,
                f"must name a jpeg, png or webp image; the URL names a {extension} file",
                url,
            )
    return url


def image_infos(field: str, value: object) -> list[dict[str, Any]] | None:
    """``ImageInfos``: image URLs, or ``ImageInfo`` dicts, as the service's list of dicts."""
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
                raise invalid(where, "needs an ImageUrl", dict(item))
            info["ImageUrl"] = _image_url(f"{where}.ImageUrl", info["ImageUrl"])
            if "ReferenceType" in info:
                info["ReferenceType"] = text(f"{where}.ReferenceType", info["ReferenceType"])
            infos.append(info)
        elif isinstance(item, str):
            infos.append({"ImageUrl": _image_url(where, item)})
        else:
            raise invalid(where, f"must be an image URL or an ImageInfo dict, got {_type_name(item)}", item)
    return infos or None


def _logo_add(field: str, value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    if isinstance(value, int) and value in LOGO_ADD_VALUES:
        return value
    raise invalid(field, "must be 0 (no watermark) or 1 (add the watermark)", value)


def extra_parameters(
    field: str, value: object, model: ModelCapabilities | None, *, strict: bool, quiet: bool
) -> dict[str, Any] | None:
    """``ExtraParameters``: aspect ratio, resolution, logo and output format, checked for ``model``."""
    if value is None:
        return None
    raw = _structure(field, value, dict, "a dict of AspectRatio, Resolution, LogoAdd, OutputFormat")
    extra = _rename_keys(field, raw, EXTRA_PARAMETER_KEYS)
    if "AspectRatio" in extra:
        where = f"{field}.AspectRatio"
        ratio = text(where, extra["AspectRatio"])
        if model is not None and model.aspect_ratios is not None and ratio not in model.aspect_ratios:
            rule = f"must be one of {', '.join(model.aspect_ratios)} for {model.name}"
            unlisted(where, rule, ratio, strict=strict, quiet=quiet)
        elif not re.fullmatch(_ASPECT_RATIO, ratio or ""):
            unlisted(where, "must be a width:height ratio such as 16:9", ratio, strict=strict, quiet=quiet)
        extra["AspectRatio"] = ratio
    if "Resolution" in extra:
        where = f"{field}.Resolution"
        resolution = text(where, extra["Resolution"])
        resolutions = model.resolutions if model is not None else ALL_RESOLUTIONS
        if resolution not in resolutions:
            suffix = f" for {model.name}" if model is not None else ""
            rule = f"must be one of {', '.join(resolutions)}{suffix}"
            unlisted(where, rule, resolution, strict=strict, quiet=quiet)
        extra["Resolution"] = resolution
    if "LogoAdd" in extra:
        extra["LogoAdd"] = _logo_add(f"{field}.LogoAdd", extra["LogoAdd"])
    if "OutputFormat" in extra:
        where = f"{field}.OutputFormat"
        output_format = text(where, extra["OutputFormat"])
        if output_format not in OUTPUT_FORMATS:
            rule = f"must be one of {', '.join(OUTPUT_FORMATS)}"
            unlisted(where, rule, output_format, strict=strict, quiet=quiet)
        extra["OutputFormat"] = output_format
    return extra or None


def _check_size(
    field: str, size: object, rule: tuple[int | None, int | None, int | None, int | None], model: str
) -> None:
    min_side, max_side, min_pixels, max_pixels = rule
    match = re.fullmatch(_SIZE, size) if isinstance(size, str) else None
    if match is None:
        raise invalid(field, f"must be WIDTHxHEIGHT in pixels for {model}", size)
    width, height = int(match.group(1)), int(match.group(2))
    if (
        min_side is not None
        and max_side is not None
        and not (min_side <= width <= max_side and min_side <= height <= max_side)
    ):
        raise invalid(
            field, f"must have width and height between {min_side} and {max_side} pixels for {model}", size
        )
    pixels = width * height
    if (min_pixels is not None and pixels < min_pixels) or (max_pixels is not None and pixels > max_pixels):
        bounds = f"at most {max_pixels}" if min_pixels is None else f"between {min_pixels} and {max_pixels}"
        raise invalid(field, f"must have width x height {bounds} pixels for {model}, got {pixels}", size)


def additional_parameters(
    field: str, value: object, model: ModelCapabilities | None, version: str | None
) -> dict[str, Any] | None:
    """``AdditionalParameters``: a JSON object (or dict) of model-specific parameters."""
    if value is None:
        return None
    parameters = _structure(field, value, dict, "a JSON object (dict)")
    try:
        json.dumps(parameters)
    except (TypeError, ValueError):
        raise invalid(field, "must hold only JSON values", parameters) from None
    if model is not None and version is not None and "size" in parameters:
        rule = model.size_rule.get(version)
        if rule is not None:
            _check_size(f"{field}.size", parameters["size"], rule, f"{model.name} {version}")
    return parameters or None


def store_cos_param(field: str, value: object) -> dict[str, Any] | None:
    """``StoreCosParam``: the COS bucket fields, bucket name and region given together."""
    if value is None:
        return None
    raw = _structure(field, value, dict, "a dict with CosBucketName and CosBucketRegion")
    cos = {
        key: text(f"{field}.{key}", item) for key, item in _rename_keys(field, raw, STORE_COS_KEYS).items()
    }
    cos = {key: item for key, item in cos.items() if item is not None}
    if not cos:
        return None
    missing = [key for key in ("CosBucketName", "CosBucketRegion") if key not in cos]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise invalid(
            field,
            f"needs CosBucketName and CosBucketRegion together; {' and '.join(missing)} {verb} missing",
            raw,
        )
    return cos
