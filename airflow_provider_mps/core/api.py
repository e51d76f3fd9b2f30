"""
The MPS API's actions, and the SDK's request and response models turned to and from plain dicts.

Shared by the sync and async paths.  The request's parameters come already checked and under the
API's names from :func:`airflow_provider_mps.validation.build_create_params`; the ``parse_*``
functions turn SDK response models into plain dicts.  No SDK type goes in or comes out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.exceptions import MpsNetworkError
from airflow_provider_mps.utils.task_id import validate_mps_task_id

if TYPE_CHECKING:
    from collections.abc import Mapping

CREATE_ACTION = "CreateAigcImageTask"
DESCRIBE_ACTION = "DescribeAigcImageTask"
TEST_CONNECTION_ACTION = "DescribeTranscodeTemplates"


def build_describe_params(task_id: object) -> dict[str, str]:
    """
    Return the ``DescribeAigcImageTask`` parameters for ``task_id``.

    :raises MpsInvalidParameterError: naming ``task_id`` when it is not a usable TaskId.
    """
    return {"TaskId": validate_mps_task_id(task_id, "task_id")}


def sdk_request(action: str, params: Mapping[str, Any]) -> Any:
    """Return the SDK's ``<action>Request`` model holding ``params`` (imports the SDK)."""
    from tencentcloud.mps.v20190612 import models

    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params, ensure_ascii=False))
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
