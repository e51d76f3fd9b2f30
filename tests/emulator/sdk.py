"""Official-SDK clients pointed at the emulator, for the emulator's own tests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mps.v20190612 import models, mps_client, mps_client_async

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle


def profile(handle: EmulatorHandle) -> ClientProfile:
    host = handle.endpoint.removeprefix("http://")
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host, reqTimeout=10))


def sync_client(
    handle: EmulatorHandle,
    *,
    secret_id: str | None = None,
    secret_key: str | None = None,
    token: str | None = None,
) -> mps_client.MpsClient:
    cred = credential.Credential(
        secret_id or handle.secret_id, secret_key or handle.secret_key, token if token else handle.token
    )
    return mps_client.MpsClient(cred, "ap-guangzhou", profile(handle))


def async_client(handle: EmulatorHandle) -> mps_client_async.MpsClient:
    cred = credential.Credential(handle.secret_id, handle.secret_key, handle.token)
    return mps_client_async.MpsClient(cred, "ap-guangzhou", profile(handle))


def create_request(**params: Any) -> models.CreateAigcImageTaskRequest:
    request = models.CreateAigcImageTaskRequest()
    request.from_json_string(json.dumps(params))
    return request


def describe_request(task_id: str) -> models.DescribeAigcImageTaskRequest:
    request = models.DescribeAigcImageTaskRequest()
    request.TaskId = task_id
    return request


def create(client: mps_client.MpsClient, **params: Any) -> str:
    """Create a task through the SDK and return its TaskId."""
    return client.CreateAigcImageTask(create_request(**params)).TaskId


def describe(client: mps_client.MpsClient, task_id: str) -> dict[str, Any]:
    """Describe a task through the SDK; return the response fields without the RequestId."""
    response = json.loads(client.DescribeAigcImageTask(describe_request(task_id)).to_json_string())
    response.pop("RequestId")
    return response


def failed(message: str) -> dict[str, Any]:
    """What :func:`describe` returns for a task that ended in FAIL with ``message``."""
    return {"Status": "FAIL", "ImageUrls": [], "Message": message}
