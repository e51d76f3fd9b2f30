"""Hook for Tencent Cloud MPS AIGC image generation, over the official SDK (sync and async clients)."""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from airflow_provider_mps import DEFAULT_CONN_ID
from airflow_provider_mps.exceptions import (
    MpsError,
    MpsTaskFailedError,
    MpsTaskTimeoutError,
    MpsTransientError,
)
from airflow_provider_mps.hooks._mps_api import (
    CREATE_ACTION,
    DESCRIBE_ACTION,
    TEST_CONNECTION_ACTION,
    build_create_params,
    build_describe_params,
    parse_create_response,
    parse_describe_response,
    parse_test_connection_response,
)
from airflow_provider_mps.hooks._mps_base import check_seconds
from airflow_provider_mps.hooks._mps_connection_form import (
    CONNECTION_TYPE,
    classic_ui_field_behaviour,
    connection_form_widgets,
)
from airflow_provider_mps.hooks._mps_errors import (
    create_may_have_succeeded,
    is_retryable_create_error,
    is_retryable_describe_error,
)
from airflow_provider_mps.hooks._mps_requests import DeadlineReached, MpsRequestHook
from airflow_provider_mps.utils.prompt import prompt_excerpt


class MpsAigcImageTaskStatus(str, Enum):
    """Status of an MPS AIGC image task, as ``DescribeAigcImageTask`` reports it."""

    WAIT = "WAIT"
    RUN = "RUN"
    DONE = "DONE"
    FAIL = "FAIL"

    @classmethod
    def is_terminal(cls, status: str) -> bool:
        """Return whether ``status`` (an enum member or the API's string) is final."""
        return _value(status) in _TERMINAL_VALUES


def _value(status: str) -> str:
    return status.value if isinstance(status, MpsAigcImageTaskStatus) else status


#: Statuses a task never leaves.
TERMINAL_STATUSES: frozenset[MpsAigcImageTaskStatus] = frozenset(
    {MpsAigcImageTaskStatus.DONE, MpsAigcImageTaskStatus.FAIL}
)
#: Terminal statuses that mean the images are ready.
SUCCESS_STATUSES: frozenset[MpsAigcImageTaskStatus] = frozenset({MpsAigcImageTaskStatus.DONE})
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)


class MpsHook(MpsRequestHook):
    """
    Create and follow Tencent Cloud MPS AIGC image tasks through the official SDK.

    Constructing the hook is cheap: the connection is read and the SDK clients are built on first
    use, once per hook, and reused (keep-alive on).  Every failure raises one of the classes in
    :mod:`airflow_provider_mps.exceptions`.

    :param mps_conn_id: the ``tencentcloud_mps`` connection to use.
    :param region: a Tencent Cloud region overriding the connection's ``region`` extra.
    :param retry_limit: how many times a transient failure is retried (read-only calls; a create
        is retried only when it certainly created nothing).
    :param retry_delay: the backoff scale in seconds; retry ``n`` waits up to
        ``retry_delay * 2 ** (n - 1)`` seconds, with jitter.
    """

    conn_name_attr = "mps_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Tencent Cloud MPS"

    # -- connection form (declared once in _mps_connection_form) ------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """
        Return the connection form's extra fields as WTForms fields (Airflow 2.11 to 3.1).

        Airflow 3.2+ reads the same fields from provider info (``conn-fields``) and does not call this.
        """
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """
        Return the connection form's relabelled, hidden and placeholder fields (Airflow 2.11 to 3.1).

        Airflow 3.2+ reads the same behaviour from provider info (``ui-field-behaviour``).
        """
        return classic_ui_field_behaviour()

    # -- API ----------------------------------------------------------------------------------

    def submit_aigc_image_task(
        self,
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
    ) -> dict[str, str]:
        """
        Create an AIGC image task and return ``{"TaskId", "RequestId"}``.

        A create is not idempotent on the service: it is retried only when it certainly created
        nothing (a ``RequestLimitExceeded`` answer, or a connection that was never established).
        When it fails after the request may have reached the service, a WARNING names the
        possibly orphaned task and the error is raised.

        :param model_name: the model, e.g. ``Hunyuan``, ``GEM``, ``Qwen``.
        :param model_version: the model version, e.g. ``3.0``.
        :param scene_type: a scene for models that have them, e.g. ``3d_panorama``.
        :param prompt: what to draw; required when no reference image is given.
        :param negative_prompt: what to keep out of the image.
        :param enhance_prompt: let the service rewrite the prompt for quality.
        :param image_infos: reference images, as URLs or ``{"ImageUrl", "ReferenceType"}`` dicts.
        :param output_image_count: how many images to generate.
        :param extra_parameters: ``AspectRatio`` / ``Resolution`` / ``LogoAdd`` / ``OutputFormat``
            (snake_case keys accepted).
        :param additional_parameters: model-specific parameters, a dict or a JSON object string.
        :param store_cos_param: ``CosBucketName`` / ``CosBucketRegion`` / ``CosBucketPath`` to store
            results in your own COS bucket (snake_case keys accepted).
        :param operator: the operator name recorded by the service.
        :raises MpsInvalidParameterError: when a field has the wrong type or shape (nothing is sent).
        """
        params = build_create_params(
            model_name=model_name,
            model_version=model_version,
            scene_type=scene_type,
            prompt=prompt,
            negative_prompt=negative_prompt,
            enhance_prompt=enhance_prompt,
            image_infos=image_infos,
            output_image_count=output_image_count,
            extra_parameters=extra_parameters,
            additional_parameters=additional_parameters,
            store_cos_param=store_cos_param,
            operator=operator,
        )
        try:
            result = self._with_retries(
                CREATE_ACTION,
                lambda _: parse_create_response(self._call(CREATE_ACTION, params)),
                is_retryable_create_error,
            )
        except MpsError as error:
            if create_may_have_succeeded(error):
                # The model, the time and the prompt's start find the orphan in the console.  All are
                # %-arguments: the hook's logger is a stdlib one before Airflow 3.1, structlog after.
                self.log.warning(
                    "CreateAigcImageTask for model %s may have created a task whose TaskId is lost: "
                    "the request may have reached the service before it failed (%s). It is not retried, "
                    "to avoid a duplicate task; check the MPS console for an orphaned AIGC image task "
                    "created around %s UTC with the prompt %s before running again.",
                    params.get("ModelName", "(default)"),
                    error,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                    prompt_excerpt(params.get("Prompt")),
                )
            raise
        self.log.info("Created MPS AIGC image task %s (RequestId %s).", result["TaskId"], result["RequestId"])
        return result

    def create_aigc_image_task(self, **fields: Any) -> str:
        """
        Create an AIGC image task and return its TaskId.

        :param fields: the keyword fields of :meth:`submit_aigc_image_task`.
        """
        return self.submit_aigc_image_task(**fields)["TaskId"]

    def describe_aigc_image_task(self, task_id: str) -> dict[str, Any]:
        """
        Return ``{"TaskId", "Status", "ImageUrls", "Message", "RequestId"}`` for an AIGC image task.

        Transient failures are retried up to ``retry_limit`` times with backoff.

        :param task_id: the MPS TaskId.
        """
        return self._describe(task_id, deadline=None)

    def _describe(self, task_id: str, *, deadline: float | None) -> dict[str, Any]:
        """:meth:`describe_aigc_image_task`, its requests and retries ending by ``deadline`` (monotonic)."""
        params = build_describe_params(task_id)
        return self._with_retries(
            DESCRIBE_ACTION,
            lambda timeout: parse_describe_response(
                task_id, self._call(DESCRIBE_ACTION, params, timeout=timeout)
            ),
            is_retryable_describe_error,
            deadline=deadline,
        )

    async def adescribe_aigc_image_task(self, task_id: str) -> dict[str, Any]:
        """
        Async :meth:`describe_aigc_image_task`, through the SDK's async client.

        :param task_id: the MPS TaskId.
        """
        params = build_describe_params(task_id)

        async def attempt_once() -> dict[str, Any]:
            return parse_describe_response(task_id, await self._acall(DESCRIBE_ACTION, params))

        return await self._awith_retries(DESCRIBE_ACTION, attempt_once, is_retryable_describe_error)

    def wait_for_aigc_image_task(
        self, task_id: str, *, poll_interval: float = 10, timeout: float | None = None
    ) -> dict[str, Any]:
        """
        Poll an AIGC image task until it ends and return its ``DONE`` describe dict.

        Each describe (and its retries) ends by the deadline: a request gets the time left as its
        timeout, if that is shorter than ``request_timeout`` (but at least
        :data:`~airflow_provider_mps.hooks._mps_requests.MIN_REQUEST_TIMEOUT`), and no retry starts
        after it.  So the wait ends within ``timeout`` plus at most that minimum.

        :param task_id: the MPS TaskId.
        :param poll_interval: seconds between two describe calls.
        :param timeout: seconds to wait in all, or ``None`` to wait as long as it takes.
        :raises MpsTaskFailedError: when the task ends in ``FAIL``.
        :raises MpsTaskTimeoutError: when ``timeout`` passes first, also while a describe kept failing
            with a transient error.
        """
        check_seconds("poll_interval", poll_interval, minimum=None)
        if timeout is not None:
            check_seconds("timeout", timeout, minimum=0)
        deadline = None if timeout is None else time.monotonic() + timeout
        last_status = None
        while True:
            try:
                result = self._describe(task_id, deadline=deadline)
            except (DeadlineReached, MpsTransientError) as error:
                failure = error.error if isinstance(error, DeadlineReached) else error
                if failure is error and (deadline is None or time.monotonic() < deadline):
                    raise
                raise MpsTaskTimeoutError(
                    f"MPS task {task_id} did not finish within the timeout of {timeout:g} seconds; its last "
                    f"status was {last_status or 'unknown'}, and the last describe failed: {failure}"
                ) from failure
            status = result["Status"]
            if status != last_status:
                self.log.info("MPS task %s is %s (RequestId %s).", task_id, status, result["RequestId"])
                last_status = status
            if status == MpsAigcImageTaskStatus.DONE.value:
                return result
            if status == MpsAigcImageTaskStatus.FAIL.value:
                raise MpsTaskFailedError(task_id, result["Message"], result["RequestId"])
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MpsTaskTimeoutError(
                        f"MPS task {task_id} did not finish within the timeout of {timeout:g} seconds; "
                        f"its last status was {status}."
                    )
                time.sleep(min(poll_interval, remaining))
            else:
                time.sleep(poll_interval)

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap read-only call (``DescribeTranscodeTemplates``, ``Limit=1``): (ok, message)."""
        endpoint = "the configured endpoint"
        try:
            endpoint = self.settings.endpoint
            result = parse_test_connection_response(self._call(TEST_CONNECTION_ACTION, {"Limit": 1}))
        except Exception as error:
            return False, f"Connection to MPS at {endpoint} failed: {error}"
        return True, f"Connection to MPS at {endpoint} succeeded (RequestId {result['RequestId']})."
