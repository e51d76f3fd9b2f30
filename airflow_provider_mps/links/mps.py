"""
Operator extra links: the generated image and the MPS console page of the AIGC task.

Airflow 3 evaluates ``get_link`` on the worker when the task finishes and stores the result in
an XCom (``_link_<ClassName>``) that the UI reads; Airflow 2's webserver calls it when the page is
shown, with the DAG's operator (its templates not rendered).  On both, the links therefore read the
XComs the task itself pushed (``image_urls``, ``return_value``, ``mps_task_id``) and return ``""``
(no button) when there is nothing to link to yet, for example while the task is deferred.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_mps import IMAGE_URLS_XCOM_KEY

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: Page of the MPS console that lists AIGC tasks ("AIGC Content Generation" → task management).
MPS_CONSOLE_AIGC_TASK_URL = "https://console.cloud.tencent.com/mps/aigc/task"

#: XCom key of the rendered TaskId, for tasks whose ``return_value`` does not hold it (the transfer).
MPS_TASK_ID_XCOM_KEY = "mps_task_id"


def _get_xcom(ti_key: TaskInstanceKey, key: str) -> Any:
    from airflow.providers.common.compat.sdk import XCom

    return XCom.get_value(ti_key=ti_key, key=key)


def _is_web_url(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def first_image_url(image_urls: object) -> str:
    """
    Return the first ``http(s)`` URL of ``image_urls``, or ``""`` when there is none.

    :param image_urls: the ``image_urls`` XCom value (a list of URLs, or ``None``).
    """
    if isinstance(image_urls, (list, tuple)) and image_urls and _is_web_url(image_urls[0]):
        return str(image_urls[0])
    return ""


def console_task_url(mps_task_id: object) -> str:
    """
    Return the MPS console URL showing the AIGC task ``mps_task_id``, or ``""`` without one.

    :param mps_task_id: the MPS TaskId; anything but a non-blank, rendered string gives ``""``.
    """
    if not isinstance(mps_task_id, str) or not mps_task_id.strip() or "{{" in mps_task_id:
        return ""
    return f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId={quote(mps_task_id.strip(), safe='')}"


def _task_id_from_return_value(value: object) -> object:
    # The create operator returns the TaskId itself and the sensor a dict carrying it; anything
    # else (the transfer's list of written files) holds no TaskId.
    if isinstance(value, dict):
        return value.get("mps_task_id") or value.get("TaskId")
    return value if isinstance(value, str) else None


class MpsAigcImageLink(BaseOperatorLink):
    """Link to the first image the MPS task generated (XCom ``image_urls`` of the task)."""

    name = "MPS Generated Image"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """
        Return the first generated image URL, or ``""`` until the task has waited for images.

        :param operator: the operator the link belongs to.
        :param ti_key: the task instance whose XComs are read.
        """
        return first_image_url(_get_xcom(ti_key, IMAGE_URLS_XCOM_KEY))


class MpsConsoleTaskLink(BaseOperatorLink):
    """
    Link to the AIGC task page of the Tencent Cloud MPS console.

    The TaskId comes from the task's ``return_value`` XCom (the create operator returns it; the
    sensor returns a dict holding it), then from its ``mps_task_id`` XCom (the transfer pushes it),
    falling back to the operator's ``mps_task_id`` when it is not a template.  The page is
    :data:`MPS_CONSOLE_AIGC_TASK_URL` with the TaskId as the ``taskId`` query parameter; the
    console requires a login to the account that owns the task.
    """

    name = "MPS Console"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """
        Return the console URL for the task's MPS TaskId, or ``""`` when it is not known.

        :param operator: the operator the link belongs to.
        :param ti_key: the task instance whose XComs are read.
        """
        mps_task_id = _task_id_from_return_value(_get_xcom(ti_key, "return_value"))
        if not mps_task_id:
            mps_task_id = _get_xcom(ti_key, MPS_TASK_ID_XCOM_KEY)
        if not mps_task_id:
            mps_task_id = getattr(operator, "mps_task_id", None)
        return console_task_url(mps_task_id)
