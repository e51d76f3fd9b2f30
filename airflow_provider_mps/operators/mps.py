"""
Operator creating a Tencent Cloud MPS AIGC image task, and optionally waiting for its images.

The batch operator, creating many tasks from one Airflow task, is
:class:`~airflow_provider_mps.operators.mps_batch.MpsCreateAigcImageBatchOperator`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin

from airflow_provider_mps import DEFAULT_CONN_ID, IMAGE_URLS_XCOM_KEY, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.links.mps import MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.operators._create import (
    DEFAULT_DEFERRABLE,
    WAIT_KNOBS,
    assign_given,
    defer,
    start,
    trigger_arguments,
)
from airflow_provider_mps.operators._spend import check_cap
from airflow_provider_mps.operators._try_record import execute_resumable, forget_on_success, try_record
from airflow_provider_mps.validation import (
    AIGC_IMAGE_REQUEST_FIELDS,
    build_aigc_image_request,
    check_literal_fields,
    check_wait,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage
    from pydantic import JsonValue

    from airflow_provider_mps.hooks.mps import MpsHook

#: XCom key of the ``CreateAigcImageTask`` RequestId (quote it in support cases).
REQUEST_ID_XCOM_KEY = "request_id"
#: Store key of the creates of this task whose outcome is unknown.
POSSIBLY_CREATED_KEY = "mps_aigc_image_task.possibly_created"


class MpsCreateAigcImageTaskOperator(ResumableJobMixin, BaseOperator):
    """
    Create an MPS AIGC image task (``CreateAigcImageTask``) and return its TaskId.

    The TaskId is the ``return_value`` XCom, so ``create.output`` feeds a sensor, a transfer or
    any downstream task; the RequestId goes to the XCom key ``request_id``.  Every request field is
    templated, accepts an ``XComArg`` and, with ``render_template_as_native_obj=True`` on the DAG,
    native objects from templates.  The rendered request is validated by
    :func:`~airflow_provider_mps.validation.build_aigc_image_request` before anything is sent;
    values that are literal in the DAG file are already validated when the DAG is parsed.

    Waiting: with ``wait_for_completion=True`` the operator waits until the task is ``DONE``
    (pushing its image URLs to the XCom key ``image_urls``) and fails with the service's message
    when it is ``FAIL``; ``deferrable=True`` waits in the triggerer instead of on a worker.  A
    deferrable operator with ``wait_for_completion=False`` does not defer.

    Re-attach on retry, on every Airflow line: the operator is a ``ResumableJobMixin``; the TaskId and
    RequestId, with a fingerprint of the rendered request, are kept as soon as the task is created
    (in the task's ``task_state_store`` on Airflow 3.3+, in Airflow Variables named after the task
    instance before: :mod:`~airflow_provider_mps.operators._try_record`), so a retried try of the
    same request picks up a task that is still running or ``DONE`` instead of paying for a second
    one; a ``FAIL``-ed or vanished task (which MPS does not bill), or one made for a request whose
    rendered fields changed, is created anew.  On 3.3 the record is left to Airflow's
    ``[state_store] clear_on_success`` (``False`` by default: clearing a successful task returns the
    same task); before 3.3 its Variables are deleted when the task succeeds.  A create whose
    outcome is unknown (answer lost, garbled, a 5xx page, ``InternalError``) fails the task without
    Airflow retries, recorded and named (:mod:`~airflow_provider_mps.operators._possibly_created`).

    :param prompt: what to draw, at most 1000 characters; required unless ``image_infos`` is given.
    :param model_name: ``ModelName``, e.g. ``GEM``, ``Hunyuan``, ``Kling``; service default if None.
    :param model_version: ``ModelVersion``, e.g. ``3.0``; the model's stable version if None.
    :param negative_prompt: what the image must not show (some models).
    :param enhance_prompt: let the service rewrite the prompt for better results.
    :param image_infos: reference images: URLs, or dicts ``{"ImageUrl", "ReferenceType"}``.
    :param output_image_count: how many images to generate.
    :param extra_parameters: ``AspectRatio``, ``Resolution``, ``LogoAdd``, ``OutputFormat``.
    :param additional_parameters: model-specific parameters, a dict or a JSON object string.
    :param store_cos_param: ``CosBucketName``, ``CosBucketRegion`` (together) and ``CosBucketPath``
        to have MPS write the results to your COS bucket.
    :param scene_type: scene preset, e.g. ``3d_panorama`` (Hunyuan).
    :param operator: the ``Operator`` name recorded by the service.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param region: the region overriding the connection's, if any.
    :param wait_for_completion: wait until the task is ``DONE`` (fail on ``FAIL``).
    :param deferrable: wait in the triggerer (only with ``wait_for_completion=True``).
    :param poll_interval: seconds between two status polls while waiting.
    :param timeout: seconds to wait for the task before failing the try; ``None`` waits forever.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second the trigger's shared
        limiter allows for this account (deferrable mode); with several triggerers, give each a
        share of the quota of 20.
    :param durable: keep the TaskId for a retry to re-attach to (``True`` by default, on every line);
        ``False`` creates a new task on every try.
    :param resubmit_on_retry: accept paying twice rather than failing: a create whose outcome is
        unknown fails the try with a retryable error and the retry sends it again (each is billed;
        every possible duplicate is counted in the log).  Without it such a create fails the task
        without retries.
    :param max_images: the most images this task may ask for (its rendered ``output_image_count``);
        over it the task fails without retries before sending.  ``None`` (the default) sets no cap:
        one create asks for a handful of images, and the account's ``image_budget`` bounds a fan-out
        (docs/spend.md).
    :param strict_validation: refuse values outside the enumerations documented today (model names
        and versions, aspect ratios, resolutions, output formats, scene types) before sending; by
        default such a value is sent with a WARNING and the service decides.
    :param openlineage_include_prompt: put the prompt in the OpenLineage events (the
        ``tencentcloudMps_aigcImage`` run facet); off by default, as prompts can be confidential.
    """

    template_fields: Sequence[str] = (
        "prompt",
        "negative_prompt",
        "model_name",
        "model_version",
        "scene_type",
        "enhance_prompt",
        "image_infos",
        "output_image_count",
        "extra_parameters",
        "additional_parameters",
        "store_cos_param",
        "operator",
        "region",
    )
    template_fields_renderers = {
        "image_infos": "json",
        "extra_parameters": "json",
        "additional_parameters": "json",
        "store_cos_param": "json",
    }
    operator_extra_links = (MpsAigcImageLink(), MpsConsoleTaskLink())
    ui_color = "#e8f3ff"

    #: task_state_store key holding ``{"TaskId", "RequestId"}`` of the task this try works on.
    external_id_key = "mps_aigc_image_task"

    # The arguments' defaults, the signature's: only arguments given are assigned (see ._create).
    prompt: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    negative_prompt: str | None = None
    enhance_prompt: bool | None = None
    image_infos: list[Any] | str | None = None
    output_image_count: int | None = None
    extra_parameters: dict[str, Any] | str | None = None
    additional_parameters: dict[str, Any] | str | None = None
    store_cos_param: dict[str, Any] | str | None = None
    scene_type: str | None = None
    operator: str | None = None
    mps_conn_id: str = DEFAULT_CONN_ID
    region: str | None = None
    wait_for_completion: bool = False
    deferrable: bool = DEFAULT_DEFERRABLE
    poll_interval: float = 10.0
    timeout: float | None = 3600.0
    rate_limit: float = SERVICE_QUOTA_PER_SECOND
    durable: bool = True
    resubmit_on_retry: bool = False
    max_images: int | None = None
    strict_validation: bool = False
    openlineage_include_prompt: bool = False

    def __init__(
        self,
        *,
        prompt: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        negative_prompt: str | None = None,
        enhance_prompt: bool | None = None,
        image_infos: list[Any] | str | None = None,
        output_image_count: int | None = None,
        extra_parameters: dict[str, Any] | str | None = None,
        additional_parameters: dict[str, Any] | str | None = None,
        store_cos_param: dict[str, Any] | str | None = None,
        scene_type: str | None = None,
        operator: str | None = None,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = DEFAULT_DEFERRABLE,
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        rate_limit: float = SERVICE_QUOTA_PER_SECOND,
        durable: bool | None = None,
        resubmit_on_retry: bool = False,
        max_images: int | None = None,
        strict_validation: bool = False,
        openlineage_include_prompt: bool = False,
        **kwargs: Any,
    ) -> None:
        start(self, durable, kwargs)
        given = assign_given(self, locals())
        # Literal values are final now: an obviously wrong DAG is an import error, not a failed run.
        # A request field left out is None, as the validation takes it ("not given").
        fields = {name: value for name, value in given.items() if name in AIGC_IMAGE_REQUEST_FIELDS}
        check_literal_fields(fields, strict=strict_validation)
        if not WAIT_KNOBS.isdisjoint(given):
            check_wait(poll_interval, timeout, rate_limit)
        if "max_images" in given:  # the cap itself: a whole number of at least 1, or None
            check_cap([], max_images, batch=False)

    def _request_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in AIGC_IMAGE_REQUEST_FIELDS}

    @cached_property
    def hook(self) -> MpsHook:
        """The hook to the service (built on first use, after templates are rendered)."""
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region)

    def execute(self, context: Context) -> str:
        """Validate the request, create the task (or re-attach to this task's earlier one), wait if asked."""
        # Imported where it runs, as the hook is: parsing a DAG file does not need it.
        from airflow_provider_mps.operators._reattach import fingerprint

        self._request = build_aigc_image_request(self._request_fields(), strict=self.strict_validation)
        check_cap([self._request], self.max_images, batch=False)
        self._fingerprint = fingerprint(self._request)
        self._job: dict[str, Any] | None = None
        self._result: dict[str, Any] | None = None
        execute_resumable(self, context, try_record(context, durable=self.durable))
        if self._job is None:  # pragma: no cover - execute_resumable always submits or re-attaches
            raise RuntimeError("No MPS task was created or re-attached.")
        return self._finish(context, self._job["TaskId"], self._result)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        mps_task_id: str | None = None,
    ) -> str:
        """
        Resume after the trigger fired: check the event, push the image URLs, return the TaskId.

        :param context: the task context.
        :param event: the trigger's event payload.
        :param mps_task_id: the TaskId the operator deferred on.
        """
        from airflow_provider_mps.triggers.mps import validate_trigger_event

        result = validate_trigger_event(event, mps_task_id=mps_task_id)
        return self._finish(context, result["TaskId"], result)

    def _finish(self, context: Context, mps_task_id: str, result: dict[str, Any] | None) -> str:
        if self.wait_for_completion and result is not None:
            image_urls = list(result.get("ImageUrls") or [])
            context["ti"].xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)
            self.log.info(
                "MPS task %s is DONE with %s image(s): %s", mps_task_id, len(image_urls), image_urls
            )
        # On 3.3 the stored TaskId stays: Airflow drops it once the task instance succeeded, when
        # [state_store] clear_on_success is set.  Before 3.3 its Variables go now (docs/failure-behaviour.md).
        store = try_record(context, durable=self.durable)
        forget_on_success(store, self.external_id_key, POSSIBLY_CREATED_KEY)
        return mps_task_id

    # ResumableJobMixin's protocol: the TaskId (with its RequestId) is the external job id.

    def submit_job(self, context: Context) -> JsonValue:
        """
        Create the MPS task; return ``{"TaskId", "RequestId", "Fingerprint"}`` for the task_state_store.

        A create that may have created a task whose TaskId is lost fails the task without retries,
        unless ``resubmit_on_retry`` (:mod:`~airflow_provider_mps.operators._possibly_created`).
        """
        # Imported here, as in get_job_status: parsing a DAG file does not need the exceptions.
        from airflow_provider_mps.operators._mps_submit import submit_task

        job = submit_task(
            self,
            context,
            request=self._request,
            fingerprint=self._fingerprint,
            possibly_created_key=POSSIBLY_CREATED_KEY,
        )
        self._job = job
        context["ti"].xcom_push(key=REQUEST_ID_XCOM_KEY, value=job["RequestId"])
        return job

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Describe the stored task; a task the service no longer knows reports ``NOT_FOUND``."""
        from airflow_provider_mps.core.api import DESCRIBE_ACTION
        from airflow_provider_mps.core.errors import Handling, classify
        from airflow_provider_mps.core.status import LocalStatus
        from airflow_provider_mps.exceptions import MpsError
        from airflow_provider_mps.operators._reattach import stored_for_another_request, stored_job

        job = stored_job(external_id)
        if stored_for_another_request(job, self._fingerprint, self.log):
            return LocalStatus.OTHER_REQUEST.value
        try:
            result = self.hook.describe_aigc_image_task(job["TaskId"])
        except MpsError as error:
            if classify(error, DESCRIBE_ACTION) is Handling.NOT_FOUND:
                self.log.warning(
                    "MPS task %s from an earlier try is unknown to the service (%s); creating a new one.",
                    job["TaskId"],
                    getattr(error, "code", error),
                )
                return LocalStatus.NOT_FOUND.value
            raise
        status = str(result["Status"])
        self.log.info("MPS task %s from an earlier try is %s", job["TaskId"], status)
        self._job = job
        self._result = result
        if job.get("RequestId"):
            context["ti"].xcom_push(key=REQUEST_ID_XCOM_KEY, value=job["RequestId"])
        return status

    def is_job_active(self, status: str) -> bool:
        """Whether the task is still running (any status but ``DONE``/``FAIL`` counts as running)."""
        from airflow_provider_mps.core.status import LocalStatus, is_final

        return status != LocalStatus.OTHER_REQUEST.value and not is_final(status)

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the task is ``DONE``."""
        from airflow_provider_mps.core.status import is_done

        return is_done(status)

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait as configured: not at all, on this worker, or deferred to the triggerer."""
        from airflow_provider_mps.operators._reattach import stored_job

        job = stored_job(external_id)
        self._job = job
        if not self.wait_for_completion:
            return
        if self.deferrable:
            from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

            self.log.info("Deferring until MPS task %s finishes (timeout %s s)", job["TaskId"], self.timeout)
            trigger = MpsAigcImageTaskTrigger(mps_task_id=job["TaskId"], **trigger_arguments(self))
            defer(self, trigger, mps_task_id=job["TaskId"])
        self._result = self.hook.wait_for_aigc_image_task(
            job["TaskId"], poll_interval=self.poll_interval, timeout=self.timeout
        )

    def get_job_result(self, external_id: JsonValue, context: Context) -> None:
        """Nothing to fetch: :meth:`execute` returns the TaskId and pushes the image URLs."""

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        Return the task's lineage: the ``externalQuery`` and ``tencentcloudMps_aigcImage`` run facets.

        :param task_instance: the finished task instance.
        """
        from airflow_provider_mps.utils.openlineage import image_task_lineage, pushed_xcom

        # After a deferral this is a new operator: what the try found is read back from its XComs.
        job = getattr(self, "_job", None)
        result = getattr(self, "_result", None)
        image_urls = None
        if self.wait_for_completion:
            image_urls = (
                list(result.get("ImageUrls") or [])
                if result
                else pushed_xcom(task_instance, IMAGE_URLS_XCOM_KEY)
            )
        return image_task_lineage(
            getattr(self, "_request", None) or self._request_fields(),
            mps_task_id=job["TaskId"] if job else pushed_xcom(task_instance, "return_value"),
            image_urls=image_urls,
            include_prompt=self.openlineage_include_prompt,
        )

    def on_kill(self) -> None:
        """Log that the MPS task keeps running: the service has no call to cancel it."""
        job = getattr(self, "_job", None)
        if job:
            self.log.warning(
                "MPS has no API to cancel AIGC image task %s; it keeps running (and is billed) on the "
                "service. Only the Airflow task was stopped.",
                job["TaskId"],
            )
