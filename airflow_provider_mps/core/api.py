"""
Request building and response parsing for the MPS AIGC image API, shared by the sync and async paths.

Callers pass snake_case keyword fields of plain Python types; :func:`build_create_params` checks
their types and shape and returns the request under the API's own names (exactly what the SDK
serialises), and the ``parse_*`` functions turn SDK response models into plain dicts.  No SDK
type goes in or comes out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.capabilities import EXTRA_PARAMETER_KEYS, IMAGE_INFO_KEYS, STORE_COS_KEYS
from airflow_provider_mps.exceptions import MpsInvalidParameterError, MpsNetworkError

if TYPE_CHECKING:
    from collections.abc import Mapping

CREATE_ACTION = "CreateAigcImageTask"
DESCRIBE_ACTION = "DescribeAigcImageTask"
TEST_CONNECTION_ACTION = "DescribeTranscodeTemplates"


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise MpsInvalidParameterError(field, f"must be a string, not {type(value).__name__}.", value)
    return value


def _rename_keys(field: str, value: object, names: Mapping[str, str]) -> dict[str, Any]:
    """Map a dict's snake_case or API keys to API names, refusing unknown and duplicate keys."""
    if not isinstance(value, dict):
        raise MpsInvalidParameterError(field, f"must be a dict, not {type(value).__name__}.", value)
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        if key not in names:
            allowed = ", ".join(sorted(set(names.values())))
            rule = f"has unknown key {key!r}; known keys are {allowed}."
            raise MpsInvalidParameterError(field, rule, value)
        api_name = names[key]
        if api_name in renamed:
            raise MpsInvalidParameterError(field, f"sets {api_name} twice.", value)
        if item is not None:
            renamed[api_name] = item
    return renamed


def _image_infos(value: object) -> list[dict[str, str]]:
    if isinstance(value, (str, dict)) or not isinstance(value, (list, tuple)):
        raise MpsInvalidParameterError(
            "image_infos", "must be a list of image URLs or of {'ImageUrl', 'ReferenceType'} dicts.", value
        )
    infos: list[dict[str, str]] = []
    for index, item in enumerate(value):
        where = f"image_infos[{index}]"
        info = {"ImageUrl": item} if isinstance(item, str) else _rename_keys(where, item, IMAGE_INFO_KEYS)
        url = info.get("ImageUrl")
        if not isinstance(url, str) or not url.strip():
            raise MpsInvalidParameterError(f"{where}.ImageUrl", "must be a non-empty URL string.", url)
        if "ReferenceType" in info:
            _require_str(f"{where}.ReferenceType", info["ReferenceType"])
        infos.append(info)
    return infos


def _extra_parameters(value: object) -> dict[str, Any]:
    params = _rename_keys("extra_parameters", value, EXTRA_PARAMETER_KEYS)
    for name in ("AspectRatio", "Resolution", "OutputFormat"):
        if name in params:
            _require_str(f"extra_parameters.{name}", params[name])
    if "LogoAdd" in params:
        logo_add = params["LogoAdd"]
        if isinstance(logo_add, bool):
            params["LogoAdd"] = int(logo_add)
        elif logo_add not in (0, 1) or not isinstance(logo_add, int):
            raise MpsInvalidParameterError("extra_parameters.LogoAdd", "must be 0 or 1.", logo_add)
    return params


def _additional_parameters(value: object) -> str:
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    rule = 'must be a dict or a string holding a JSON object, such as \'{"size":"1024x1024"}\'.'
    if not isinstance(value, str):
        raise MpsInvalidParameterError("additional_parameters", rule, value)
    try:
        parsed = json.loads(value)
    except ValueError:
        raise MpsInvalidParameterError("additional_parameters", rule, value) from None
    if not isinstance(parsed, dict):
        raise MpsInvalidParameterError("additional_parameters", rule, value)
    return value


def _store_cos_param(value: object) -> dict[str, str]:
    params = _rename_keys("store_cos_param", value, STORE_COS_KEYS)
    for name in ("CosBucketName", "CosBucketRegion"):
        if not params.get(name):
            raise MpsInvalidParameterError(
                f"store_cos_param.{name}", "is required when results are stored in COS.", params.get(name)
            )
    for name, item in params.items():
        _require_str(f"store_cos_param.{name}", item)
    return params


def build_create_params(
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    scene_type: str | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    enhance_prompt: bool | None = None,
    image_infos: list[str | dict[str, str]] | None = None,
    output_image_count: int | None = None,
    extra_parameters: dict[str, Any] | None = None,
    additional_parameters: dict[str, Any] | str | None = None,
    store_cos_param: dict[str, str] | None = None,
    operator: str | None = None,
) -> dict[str, Any]:
    """
    Return the ``CreateAigcImageTask`` parameters under the API's names, ``None`` fields omitted.

    :raises MpsInvalidParameterError: when a field has the wrong type or shape, or neither a
        prompt nor a reference image is given.
    """
    params: dict[str, Any] = {}
    for api_name, field, text in (
        ("ModelName", "model_name", model_name),
        ("ModelVersion", "model_version", model_version),
        ("SceneType", "scene_type", scene_type),
        ("Prompt", "prompt", prompt),
        ("NegativePrompt", "negative_prompt", negative_prompt),
        ("Operator", "operator", operator),
    ):
        if text is not None:
            params[api_name] = _require_str(field, text)
    if enhance_prompt is not None:
        if not isinstance(enhance_prompt, bool):
            raise MpsInvalidParameterError("enhance_prompt", "must be True or False.", enhance_prompt)
        params["EnhancePrompt"] = enhance_prompt
    if image_infos is not None:
        params["ImageInfos"] = _image_infos(image_infos)
    if output_image_count is not None:
        if isinstance(output_image_count, bool) or not isinstance(output_image_count, int):
            raise MpsInvalidParameterError("output_image_count", "must be an integer.", output_image_count)
        if output_image_count < 1:
            raise MpsInvalidParameterError("output_image_count", "must be at least 1.", output_image_count)
        params["OutputImageCount"] = output_image_count
    if extra_parameters is not None:
        params["ExtraParameters"] = _extra_parameters(extra_parameters)
    if additional_parameters is not None:
        params["AdditionalParameters"] = _additional_parameters(additional_parameters)
    if store_cos_param is not None:
        params["StoreCosParam"] = _store_cos_param(store_cos_param)
    if not params.get("Prompt", "").strip() and not params.get("ImageInfos"):
        raise MpsInvalidParameterError(
            "prompt", "is required when no reference image is given in image_infos.", prompt
        )
    return params


def build_describe_params(task_id: str) -> dict[str, str]:
    """Return the ``DescribeAigcImageTask`` parameters for ``task_id``."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise MpsInvalidParameterError("task_id", "must be a non-empty MPS TaskId string.", task_id)
    return {"TaskId": task_id}


def sdk_request(action: str, params: dict[str, Any]) -> Any:
    """Return the SDK's ``<action>Request`` model holding ``params`` (imports the SDK)."""
    from tencentcloud.mps.v20190612 import models

    request = getattr(models, f"{action}Request")()
    request._deserialize(params)
    return request


def _malformed(action: str, what: str, request_id: str | None) -> MpsNetworkError:
    return MpsNetworkError(
        "ClientNetworkError.MalformedResponse",
        f"The service's answer has {what}.",
        request_id,
        action,
        request_may_have_reached_service=True,
    )


def parse_create_response(response: Any) -> dict[str, str]:
    """Return ``{"TaskId", "RequestId"}`` from a ``CreateAigcImageTaskResponse``."""
    task_id, request_id = response.TaskId, response.RequestId
    if not isinstance(task_id, str) or not task_id:
        raise _malformed(CREATE_ACTION, "no TaskId, so the task it may have created is unknown", request_id)
    return {"TaskId": task_id, "RequestId": request_id}


def parse_describe_response(task_id: str, response: Any) -> dict[str, Any]:
    """Return ``{"TaskId", "Status", "ImageUrls", "Message", "RequestId"}`` from a describe response."""
    status = response.Status
    if not isinstance(status, str) or not status:
        raise _malformed(DESCRIBE_ACTION, "no task Status", response.RequestId)
    return {
        "TaskId": task_id,
        "Status": status,
        "ImageUrls": list(response.ImageUrls or []),
        "Message": response.Message,
        "RequestId": response.RequestId,
    }


def parse_test_connection_response(response: Any) -> dict[str, Any]:
    """Return ``{"TotalCount", "RequestId"}`` from a ``DescribeTranscodeTemplatesResponse``."""
    return {"TotalCount": response.TotalCount, "RequestId": response.RequestId}
