"""Parameter checks of each emulated action, in the order and with the codes the service uses."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_mps.emulator.exceptions import (
    InvalidParameterValueError,
    MissingParameterError,
    UnknownParameterError,
)

#: Models CreateAigcImageTask accepts, each with its versions (``None``: the stable default).
MODEL_VERSIONS: dict[str, tuple[str, ...]] = {
    "Hunyuan": ("3.5-preview", "3.0"),
    "GEM": ("2.5", "3.0"),
    "Jimeng": ("4.0",),
    "Qwen": ("0925",),
    "Vidu": ("q2",),
    "Kling": ("2.1", "O1", "3.0", "3.0-Omni"),
    "wand-vega-image": ("1.0-lite", "1.0-flash", "1.0-pro"),
}

#: Most reference images per model, for each group of its versions sharing one limit (``None``:
#: no version given).
_IMAGE_INFO_LIMITS: tuple[tuple[str, int, tuple[str | None, ...]], ...] = (
    ("Hunyuan", 5, (None, "3.5-preview")),
    ("Hunyuan", 3, ("3.0",)),
    ("GEM", 3, (None, *MODEL_VERSIONS["GEM"])),
    ("Vidu", 7, (None, *MODEL_VERSIONS["Vidu"])),
    ("Kling", 10, (None, "O1", "3.0-Omni")),
    ("Kling", 4, ("2.1",)),
    ("wand-vega-image", 10, (None, *MODEL_VERSIONS["wand-vega-image"])),
)
#: Most reference images per model and version; ``None`` keys hold the limit when no version is given.
MAX_IMAGE_INFOS: dict[tuple[str, str | None], int] = {
    (model, version): limit for model, limit, versions in _IMAGE_INFO_LIMITS for version in versions
}
#: Reference-image limit of models and versions not listed in :data:`MAX_IMAGE_INFOS`.
DEFAULT_MAX_IMAGE_INFOS = 1

MAX_PROMPT_CHARS = 1000
MAX_OUTPUT_IMAGE_COUNT = 4
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
RESOLUTIONS = ("720P", "1080P", "1K", "2K", "4K")
OUTPUT_FORMATS = ("jpeg", "png")

_STRING_FIELDS = ("ModelName", "ModelVersion", "SceneType", "Prompt", "NegativePrompt", "Operator")
_CREATE_FIELDS = (
    *_STRING_FIELDS,
    "EnhancePrompt",
    "ImageInfos",
    "OutputImageCount",
    "ExtraParameters",
    "AdditionalParameters",
    "StoreCosParam",
)
_EXTRA_FIELDS = ("AspectRatio", "Resolution", "LogoAdd", "OutputFormat")
_COS_FIELDS = ("CosBucketName", "CosBucketRegion", "CosBucketPath")
_IMAGE_INFO_FIELDS = ("ImageUrl", "ReferenceType")

_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object", list: "an array"}


def _expect(field: str, value: Any, kind: type) -> None:
    """Raise InvalidParameterValue unless ``value`` is a JSON ``kind`` (booleans are not integers)."""
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise InvalidParameterValueError(field, f"it must be {_TYPE_NAMES[kind]}, not {json.dumps(value)}")


def _reject_unknown(prefix: str, params: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in params:
        if key not in known:
            raise UnknownParameterError(f"{prefix}{key}")


def validate_create_aigc_image_task(params: dict[str, Any]) -> None:
    """
    Check CreateAigcImageTask parameters as the service does.

    :param params: the request body.
    :raises MpsServiceError: ``UnknownParameter``, ``MissingParameter`` or ``InvalidParameterValue[.X]``.
    """
    _reject_unknown("", params, _CREATE_FIELDS)
    for field in _STRING_FIELDS:
        if field in params:
            _expect(field, params[field], str)
    if "EnhancePrompt" in params:
        _expect("EnhancePrompt", params["EnhancePrompt"], bool)
    model, version = _validate_model(params)
    image_infos = _validate_image_infos(params, model, version)
    _validate_prompts(params, image_infos)
    if "OutputImageCount" in params:
        count = params["OutputImageCount"]
        _expect("OutputImageCount", count, int)
        if not 1 <= count <= MAX_OUTPUT_IMAGE_COUNT:
            raise InvalidParameterValueError(
                "OutputImageCount", f"{count} is outside the range 1 to {MAX_OUTPUT_IMAGE_COUNT}"
            )
    _validate_extra_parameters(params)
    _validate_additional_parameters(params)
    _validate_store_cos_param(params)


def _validate_model(params: dict[str, Any]) -> tuple[Any, Any]:
    """Check ModelName, ModelVersion and SceneType; return the model and version (``None``: not given)."""
    model = params.get("ModelName")
    version = params.get("ModelVersion")
    if model is not None and model not in MODEL_VERSIONS:
        raise InvalidParameterValueError(
            "ModelName", f"`{model}` is not one of {', '.join(MODEL_VERSIONS)}", sub_code="ModelName"
        )
    if version is not None:
        allowed = MODEL_VERSIONS.get(model or "Hunyuan", ())
        if version not in allowed:
            raise InvalidParameterValueError(
                "ModelVersion",
                f"`{version}` is not a version of {model or 'the default model Hunyuan'} "
                f"({', '.join(allowed)})",
                sub_code="ModelVersion",
            )
    if params.get("SceneType") is not None and (params["SceneType"] != "3d_panorama" or model != "Hunyuan"):
        raise InvalidParameterValueError(
            "SceneType",
            "only `3d_panorama` is supported, and only by the Hunyuan model",
            sub_code="SceneType",
        )
    return model, version


def _validate_image_infos(params: dict[str, Any], model: Any, version: Any) -> list[Any]:
    """Check ImageInfos, each item and their number for ``model`` and ``version``; return the items."""
    image_infos = params.get("ImageInfos") or []
    if "ImageInfos" in params:
        _expect("ImageInfos", params["ImageInfos"], list)
    for i, info in enumerate(image_infos):
        _expect(f"ImageInfos.{i}", info, dict)
        _reject_unknown(f"ImageInfos.{i}.", info, _IMAGE_INFO_FIELDS)
        if info.get("ImageUrl") is None:
            raise MissingParameterError(f"ImageInfos.{i}.ImageUrl")
        _expect(f"ImageInfos.{i}.ImageUrl", info["ImageUrl"], str)
        if not info["ImageUrl"].startswith(("http://", "https://")):
            raise InvalidParameterValueError(f"ImageInfos.{i}.ImageUrl", "it must be an http or https URL")
        if info.get("ReferenceType") is not None:
            _expect(f"ImageInfos.{i}.ReferenceType", info["ReferenceType"], str)
    limit = MAX_IMAGE_INFOS.get((model or "Hunyuan", version), DEFAULT_MAX_IMAGE_INFOS)
    if len(image_infos) > limit:
        raise InvalidParameterValueError(
            "ImageInfos",
            f"{model or 'Hunyuan'} {version or '(default version)'} accepts at most {limit} reference "
            f"image{'s' if limit > 1 else ''}, got {len(image_infos)}",
        )
    return image_infos


def _validate_prompts(params: dict[str, Any], image_infos: list[Any]) -> None:
    """Check Prompt (required without ``image_infos``) and NegativePrompt."""
    prompt = params.get("Prompt")
    if not prompt and not image_infos:
        raise InvalidParameterValueError("Prompt", "it is required (non-empty) when no ImageInfos are given")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidParameterValueError(
            "Prompt", f"it is {len(prompt)} characters long, over the limit of {MAX_PROMPT_CHARS}"
        )
    if params.get("NegativePrompt") is not None and len(params["NegativePrompt"]) > MAX_PROMPT_CHARS:
        raise InvalidParameterValueError(
            "NegativePrompt", f"it is over the limit of {MAX_PROMPT_CHARS} characters"
        )


def _validate_extra_parameters(params: dict[str, Any]) -> None:
    if "ExtraParameters" not in params:
        return
    extra = params["ExtraParameters"]
    _expect("ExtraParameters", extra, dict)
    _reject_unknown("ExtraParameters.", extra, _EXTRA_FIELDS)
    for key, allowed in (
        ("AspectRatio", ASPECT_RATIOS),
        ("Resolution", RESOLUTIONS),
        ("OutputFormat", OUTPUT_FORMATS),
    ):
        if extra.get(key) is not None:
            _expect(f"ExtraParameters.{key}", extra[key], str)
            if extra[key] not in allowed:
                raise InvalidParameterValueError(
                    f"ExtraParameters.{key}", f"`{extra[key]}` is not one of {', '.join(allowed)}"
                )
    if extra.get("LogoAdd") is not None:
        _expect("ExtraParameters.LogoAdd", extra["LogoAdd"], int)
        if extra["LogoAdd"] not in (0, 1):
            raise InvalidParameterValueError("ExtraParameters.LogoAdd", f"{extra['LogoAdd']} is not 0 or 1")


def _validate_additional_parameters(params: dict[str, Any]) -> None:
    if params.get("AdditionalParameters") is None:
        return
    raw = params["AdditionalParameters"]
    _expect("AdditionalParameters", raw, str)
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise InvalidParameterValueError(
            "AdditionalParameters", "it must be a JSON object serialised as a string"
        )


def _validate_store_cos_param(params: dict[str, Any]) -> None:
    if params.get("StoreCosParam") is None:
        return
    cos = params["StoreCosParam"]
    _expect("StoreCosParam", cos, dict)
    _reject_unknown("StoreCosParam.", cos, _COS_FIELDS)
    for key in _COS_FIELDS:
        if cos.get(key) is not None:
            _expect(f"StoreCosParam.{key}", cos[key], str)
    for key in ("CosBucketName", "CosBucketRegion"):
        if not cos.get(key):
            raise MissingParameterError(f"StoreCosParam.{key}")


def validate_describe_aigc_image_task(params: dict[str, Any]) -> str:
    """Check DescribeAigcImageTask parameters and return the TaskId."""
    _reject_unknown("", params, ("TaskId",))
    if params.get("TaskId") is None:
        raise MissingParameterError("TaskId")
    _expect("TaskId", params["TaskId"], str)
    return str(params["TaskId"])


def validate_describe_transcode_templates(params: dict[str, Any]) -> tuple[int, int]:
    """Check the DescribeTranscodeTemplates fields the emulator reads; return ``(Offset, Limit)``."""
    offset, limit = params.get("Offset", 0), params.get("Limit", 10)
    _expect("Offset", offset, int)
    _expect("Limit", limit, int)
    if not 1 <= limit <= 100:
        raise InvalidParameterValueError("Limit", f"{limit} is outside the range 1 to 100")
    return offset, limit
