"""Operator creating a Tencent Cloud MPS AIGC image task, and optionally waiting for its images."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import ResumableJobMixin
from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_mps.exceptions import (
    MpsApiError,
    MpsError,
    MpsInvalidParameterError,
    MpsTaskTimeoutError,
)
from airflow_provider_mps.links.mps import IMAGE_URLS_XCOM_KEY, MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.validation import build_aigc_image_request, validate_literal_aigc_image_fields

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context
    from pydantic import JsonValue

    from airflow_provider_mps.hooks.mps import MpsHook

#: The connection every MPS class uses unless told otherwise (``MpsHook.default_conn_name``).
DEFAULT_CONN_ID = "tencentcloud_mps_default"

#: XCom key of the ``CreateAigcImageTask`` RequestId (quote it in support cases).
REQUEST_ID_XCOM_KEY = "request_id"

#: XCom key of the batch operator's failed items.
BATCH_FAILURES_XCOM_KEY = "failures"

#: XCom key of the batch operator's create RequestId per item.
BATCH_REQUEST_IDS_XCOM_KEY = "request_ids"

#: Error codes (and their prefixes) of requests the service refuses as malformed: never retried.
_REFUSED_REQUEST_CODES = ("InvalidParameter", "MissingParameter", "UnknownParameter")

#: Status reported for a stored TaskId the service no longer knows (never an MPS status).
_GONE = "NOT_FOUND"

#: What an item's status is when waiting ended before its task did (unknown: never described).
_UNFINISHED = ("WAIT", "RUN", "None")

#: With ``timeout=None`` a deferred wait still needs a deadline: effectively none.
_NO_DEADLINE_SECONDS = 365 * 24 * 3600.0


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

    Re-attach: the TaskId and RequestId are kept in the task's ``task_state_store`` (Airflow 3.3+)
    as soon as the task is created, so a retried try picks up a task that is still running or
    ``DONE`` instead of paying for a second one; a ``FAIL``-ed or vanished task is created anew.
    The stored TaskId is dropped when the operator succeeds, so clearing a successful task
    generates a new image.  With ``durable=False`` every try creates a new task.

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
    :param durable: keep the TaskId in the ``task_state_store`` so a retry re-attaches to it.
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

    # Set in __init__ through one ``vars(self).update`` (see there).
    prompt: Any
    model_name: Any
    model_version: Any
    scene_type: Any
    negative_prompt: Any
    enhance_prompt: Any
    image_infos: Any
    output_image_count: Any
    extra_parameters: Any
    additional_parameters: Any
    store_cos_param: Any
    operator: Any
    mps_conn_id: str
    region: str | None
    wait_for_completion: bool
    deferrable: bool
    poll_interval: float
    timeout: float | None
    durable: bool

    #: task_state_store key holding ``{"TaskId", "RequestId"}`` of the task this try works on.
    external_id_key = "mps_aigc_image_task"

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
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        # BaseOperator.__init__ directly: the mixin's own __init__ only stores ``durable``, yet would
        # run Airflow's default-args wrapper a second time for every operator of a parsed DAG.
        super(ResumableJobMixin, self).__init__(**kwargs)
        request_fields = {
            "prompt": prompt,
            "model_name": model_name,
            "model_version": model_version,
            "scene_type": scene_type,
            "negative_prompt": negative_prompt,
            "enhance_prompt": enhance_prompt,
            "image_infos": image_infos,
            "output_image_count": output_image_count,
            "extra_parameters": extra_parameters,
            "additional_parameters": additional_parameters,
            "store_cos_param": store_cos_param,
            "operator": operator,
        }
        # Literal values are final now: an obviously wrong DAG is an import error, not a failed run.
        validate_literal_aigc_image_fields(request_fields)
        _check_seconds("poll_interval", poll_interval)
        if timeout is not None:
            _check_seconds("timeout", timeout)
        # One dict update instead of 19 BaseOperator.__setattr__ calls, which during __init__ would
        # only re-record init kwargs that Airflow's wrapper records anyway.
        vars(self).update(
            request_fields,
            mps_conn_id=mps_conn_id,
            region=region,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            durable=durable,
        )

    def _request_fields(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "scene_type": self.scene_type,
            "negative_prompt": self.negative_prompt,
            "enhance_prompt": self.enhance_prompt,
            "image_infos": self.image_infos,
            "output_image_count": self.output_image_count,
            "extra_parameters": self.extra_parameters,
            "additional_parameters": self.additional_parameters,
            "store_cos_param": self.store_cos_param,
            "operator": self.operator,
        }

    @cached_property
    def hook(self) -> MpsHook:
        """The hook to the service (built on first use, after templates are rendered)."""
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region)

    def execute(self, context: Context) -> str:
        """Validate the request, create the task (or re-attach to this task's earlier one), wait if asked."""
        self._request = build_aigc_image_request(self._request_fields())
        self._job: dict[str, Any] | None = None
        self._result: dict[str, Any] | None = None
        self.execute_resumable(context)
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
        store = context.get("task_state_store")
        if store is not None and self.durable:
            # Done with this task: a later clear of this task instance generates a new image.
            store.delete(self.external_id_key)
        return mps_task_id

    # ResumableJobMixin: the TaskId (with its RequestId) is the external job id.

    def submit_job(self, context: Context) -> JsonValue:
        """Create the MPS task; return ``{"TaskId", "RequestId"}`` for the task_state_store."""
        # The hook logs the TaskId and RequestId, and warns when a failed create may have created a task.
        try:
            response = self.hook.submit_aigc_image_task(**self._request)
        except MpsApiError as error:
            if error.code.startswith(_REFUSED_REQUEST_CODES):
                raise AirflowFailException(
                    f"{error} The service refused the request's parameters; the same request cannot "
                    "succeed on a retry, so the task fails without retrying."
                ) from error
            raise
        self._job = {"TaskId": response["TaskId"], "RequestId": response["RequestId"]}
        context["ti"].xcom_push(key=REQUEST_ID_XCOM_KEY, value=response["RequestId"])
        return {"TaskId": response["TaskId"], "RequestId": response["RequestId"]}

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Describe the stored task; a task the service no longer knows reports ``NOT_FOUND``."""
        job = _stored_job(external_id)
        try:
            result = self.hook.describe_aigc_image_task(job["TaskId"])
        except MpsApiError as error:
            if error.code.startswith("ResourceNotFound"):
                self.log.warning(
                    "MPS task %s from an earlier try is unknown to the service (%s); creating a new one.",
                    job["TaskId"],
                    error.code,
                )
                return _GONE
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
        from airflow_provider_mps.hooks.mps import MpsAigcImageTaskStatus

        return status != _GONE and not MpsAigcImageTaskStatus.is_terminal(status)

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the task is ``DONE``."""
        from airflow_provider_mps.hooks.mps import SUCCESS_STATUSES

        return status in SUCCESS_STATUSES

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait as configured: not at all, on this worker, or deferred to the triggerer."""
        job = _stored_job(external_id)
        self._job = job
        if not self.wait_for_completion:
            return
        if self.deferrable:
            self._defer(job["TaskId"])
        self._result = self.hook.wait_for_aigc_image_task(
            job["TaskId"], poll_interval=self.poll_interval, timeout=self.timeout
        )

    def get_job_result(self, external_id: JsonValue, context: Context) -> None:
        """Nothing to fetch: :meth:`execute` returns the TaskId and pushes the image URLs."""

    def _defer(self, mps_task_id: str) -> None:
        from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

        wait = self.timeout if self.timeout is not None else _NO_DEADLINE_SECONDS
        self.log.info("Deferring until MPS task %s finishes (timeout %s s)", mps_task_id, self.timeout)
        self.defer(
            trigger=MpsAigcImageTaskTrigger(
                mps_task_id=mps_task_id,
                mps_conn_id=self.mps_conn_id,
                poll_interval=self.poll_interval,
                end_time=time.time() + wait,
                region=self.region,
            ),
            method_name="execute_complete",
            kwargs={"mps_task_id": mps_task_id},
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


def _check_seconds(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise MpsInvalidParameterError(field, "must be a number of seconds greater than 0.", value)


def _stored_job(external_id: JsonValue) -> dict[str, Any]:
    """Read a stored job: ``{"TaskId", "RequestId"}``, or a bare TaskId string."""
    if isinstance(external_id, dict) and isinstance(external_id.get("TaskId"), str):
        return {"TaskId": external_id["TaskId"], "RequestId": external_id.get("RequestId")}
    if isinstance(external_id, str):
        return {"TaskId": external_id, "RequestId": None}
    raise TypeError(f"The stored MPS job {external_id!r} holds no TaskId.")


class MpsCreateAigcImageTasksOperator(BaseOperator):
    """
    Create one MPS AIGC image task per item of ``requests`` from a single Airflow task, at the quota.

    ``requests`` is a list of prompts or of request dicts (the single operator's field names, or
    the service's), literal, templated or an ``XComArg`` (e.g. rows of a data set); ``shared_fields``
    apply to every item that does not set the field itself.  Every item is validated with the single
    operator's rules before anything is sent; one invalid item refuses the whole batch.

    Submission: creates go out from a small thread pool, each waiting for its slot at the
    process-wide rate limiter of the account (``rate_limit`` per second, the service's quota of 20
    by default), so the batch takes about ``len(requests) / rate_limit`` seconds.  A create refused
    for quota (``RequestLimitExceeded``) or whose connection was never made is retried: nothing was
    created.  A create that failed after it may have reached the service is never resent; it is
    reported as a failure with ``possibly_created`` set and a WARNING.  The batch stops sending at an
    error no other item can escape (bad credentials, no permission), and after
    :data:`~airflow_provider_mps.operators._mps_batch.MAX_CONSECUTIVE_FAILURES` service or network
    failures in a row; the items not sent are reported as ``NotSubmitted``.

    Re-attach: each created TaskId is written to the task's ``task_state_store`` as soon as it is
    known, so a retried try reuses the tasks of unchanged items (same position, same request)
    instead of paying for them again, creates the items that failed or were never sent, and never
    resends a possibly created one.  The record is dropped when the operator succeeds.

    Waiting: with ``wait_for_completion=True`` the operator waits until every task is ``DONE`` or
    ``FAIL`` (``deferrable=True``: in the triggerer, with one
    :class:`~airflow_provider_mps.triggers.mps.MpsAigcImageTasksTrigger` for the whole batch), polling
    within the describe quota.

    XComs: ``return_value`` is the list of TaskIds in input order, ``None`` for each failed item;
    ``failures`` the failed items (``index``, ``stage``, ``code``, ``message``, ``request_id``,
    ``mps_task_id``, ``possibly_created``); ``request_ids`` the create RequestId per item; and, when
    waiting, ``image_urls`` the list of image URLs per item (empty for failed items).

    Failing: when more than ``max_failed_items`` items failed, the task fails, after every other
    item was sent (and waited for, when waiting) and every XCom above was pushed.  With the default
    of 0, any failed item fails the task and its retry re-attaches to the rest.

    :param requests: the items: prompts, or dicts of request fields.
    :param shared_fields: request fields applied to every item that does not set them, e.g.
        ``{"model_name": "GEM", "extra_parameters": {"AspectRatio": "1:1"}}``.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param region: the region overriding the connection's, if any.
    :param wait_for_completion: wait until every task is ``DONE`` or ``FAIL``.
    :param deferrable: wait in the triggerer (only with ``wait_for_completion=True``).
    :param poll_interval: seconds between two polls of the unfinished tasks while waiting.
    :param timeout: seconds to wait for the tasks after submitting them; ``None`` waits forever.
    :param rate_limit: the most ``CreateAigcImageTask`` (and ``DescribeAigcImageTask``) calls per
        second from this process for the account; the service allows 20.
    :param max_failed_items: how many items may fail before the task fails; ``None`` for no limit.
    :param durable: keep the created TaskIds in the ``task_state_store`` so a retry re-attaches.
    """

    template_fields: Sequence[str] = ("requests", "shared_fields", "region")
    template_fields_renderers = {"requests": "json", "shared_fields": "json"}
    ui_color = "#e8f3ff"

    requests: Any
    shared_fields: Any
    mps_conn_id: str
    region: str | None
    wait_for_completion: bool
    deferrable: bool
    poll_interval: float
    timeout: float | None
    rate_limit: float
    max_failed_items: int | None
    durable: bool

    def __init__(
        self,
        *,
        requests: list[Any] | str,
        shared_fields: dict[str, Any] | str | None = None,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        rate_limit: float = 20.0,
        max_failed_items: int | None = 0,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_mps.operators._mps_batch import validate_literal_batch

        validate_literal_batch(requests, shared_fields)
        _check_seconds("poll_interval", poll_interval)
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, (int, float)) or not rate_limit > 0:
            raise MpsInvalidParameterError(
                "rate_limit", "must be a number of requests per second greater than 0.", rate_limit
            )
        if timeout is not None:
            _check_seconds("timeout", timeout)
        if max_failed_items is not None and (
            isinstance(max_failed_items, bool)
            or not isinstance(max_failed_items, int)
            or max_failed_items < 0
        ):
            raise MpsInvalidParameterError(
                "max_failed_items",
                "must be a whole number, 0 or more, or None for no limit.",
                max_failed_items,
            )
        # One dict update instead of one BaseOperator.__setattr__ per attribute (see the single operator).
        vars(self).update(
            requests=requests,
            shared_fields=shared_fields,
            mps_conn_id=mps_conn_id,
            region=region,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            rate_limit=rate_limit,
            max_failed_items=max_failed_items,
            durable=durable,
        )

    @cached_property
    def hook(self) -> MpsHook:
        """
        The hook to the service (built on first use, after templates are rendered).

        Its own retries are off: the batch retries safe failures itself, through the rate limiter.
        """
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region, retry_limit=0)

    def execute(self, context: Context) -> list[str | None]:
        """Validate every item, create the tasks (re-attaching to an earlier try's), wait if asked."""
        from airflow_provider_mps.operators._mps_batch import (
            BatchLedger,
            fingerprint,
            item_failure,
            prepare_batch_requests,
        )

        requests = prepare_batch_requests(self.requests, self.shared_fields)
        count = len(requests)
        store = context.get("task_state_store") if self.durable else None
        ledger = BatchLedger(store, count) if store is not None else None
        fingerprints = [fingerprint(request) for request in requests]
        task_ids: list[str | None] = [None] * count
        request_ids: list[str | None] = [None] * count
        failures: dict[int, dict[str, Any]] = {}

        for index, entry in (ledger.load(fingerprints) if ledger is not None else {}).items():
            if entry.get("PossiblyCreated"):
                failures[index] = item_failure(
                    index,
                    stage="create",
                    code=str(entry.get("Code")),
                    message=(
                        f"An earlier try's create may have created a task whose TaskId is lost "
                        f"({entry.get('Message')}); it is not resent, to avoid a duplicate task."
                    ),
                    request_id=entry.get("RequestId"),
                    possibly_created=True,
                )
            elif isinstance(entry.get("TaskId"), str) and "Status" not in entry:
                task_ids[index], request_ids[index] = entry["TaskId"], entry.get("RequestId")
        reattached = sum(task_id is not None for task_id in task_ids)
        if reattached or failures:
            self.log.info(
                "Re-attached to %s MPS task(s) created by an earlier try; %s item(s) may have been created "
                "by it and are not resent.",
                reattached,
                len(failures),
            )
        to_create = {
            index: request
            for index, request in enumerate(requests)
            if task_ids[index] is None and index not in failures
        }
        stopped = self._submit(to_create, fingerprints, ledger, task_ids, request_ids, failures)

        if self.wait_for_completion and stopped is None and not self._too_many(failures):
            pending = [task_id for task_id in task_ids if task_id is not None]
            if pending:
                trigger = self._trigger(pending)
                if self.deferrable:
                    self.log.info(
                        "Deferring until %s MPS task(s) finish (timeout %s s).", len(pending), self.timeout
                    )
                    # The XComs carry the batch across the deferral (dag.test() drops defer kwargs).
                    self._push(context, task_ids, request_ids, failures, image_urls=None)
                    self.defer(trigger=trigger, method_name="execute_complete")
                event = _first_event(trigger)
                return self._complete(context, event, task_ids, request_ids, failures)
            return self._finish(context, task_ids, request_ids, failures, image_urls=[[] for _ in task_ids])
        return self._finish(context, task_ids, request_ids, failures, image_urls=None, stopped=stopped)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
    ) -> list[str | None]:
        """
        Resume after the batch trigger fired: check the event, record each item's outcome.

        The TaskIds, RequestIds and failures of the submission are read back from the XComs this
        try pushed before deferring.

        :param context: the task context.
        :param event: the trigger's event payload.
        """
        ti = context["ti"]

        def pushed(key: str) -> Any:
            return ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=ti.map_index)

        task_ids, request_ids, failures = (
            pushed(key) for key in ("return_value", BATCH_REQUEST_IDS_XCOM_KEY, BATCH_FAILURES_XCOM_KEY)
        )
        if (
            not isinstance(task_ids, list)
            or not isinstance(request_ids, list)
            or not isinstance(failures, list)
        ):
            raise MpsError(
                "The batch's TaskIds, RequestIds and failures pushed before deferring are missing from "
                "the XComs of this try; the deferral cannot be resumed."
            )
        known = {int(failure["index"]): failure for failure in failures}
        return self._complete(context, event, list(task_ids), list(request_ids), known)

    # -- submission ---------------------------------------------------------------------------

    def _submit(
        self,
        to_create: dict[int, dict[str, Any]],
        fingerprints: list[str],
        ledger: Any,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
    ) -> str | None:
        """Send the creates, recording each outcome as it comes; return why the batch stopped early, if so."""
        from airflow_provider_mps.hooks._mps_errors import create_may_have_succeeded
        from airflow_provider_mps.operators._mps_batch import (
            MAX_CONSECUTIVE_FAILURES,
            NOT_SUBMITTED,
            BatchSubmitter,
            ProgressLog,
            create_failure,
            is_batch_fatal,
            item_failure,
        )
        from airflow_provider_mps.utils.rate_limit import get_rate_limiter

        if not to_create:
            return None
        self.log.info("Submitting %s MPS AIGC image task(s) at up to %s/s.", len(to_create), self.rate_limit)
        # Read the connection on this thread: the workers only send requests.
        limiter = get_rate_limiter(self.hook.rate_limit_key, "CreateAigcImageTask", self.rate_limit)
        submitter = BatchSubmitter(self.hook, limiter, to_create)
        progress = ProgressLog(len(to_create))
        consecutive = 0
        stop_reason: str | None = None
        for done, outcome in enumerate(submitter, start=1):
            index = outcome.index
            if outcome.response is not None:
                task_ids[index] = outcome.response["TaskId"]
                request_ids[index] = outcome.response["RequestId"]
                if ledger is not None:
                    ledger.record(index, fingerprints[index], **outcome.response)
                consecutive = 0
            elif not outcome.submitted:
                failures[index] = item_failure(
                    index, stage="create", code=NOT_SUBMITTED, message=f"Not sent: {stop_reason}"
                )
            elif outcome.error is not None:
                error = outcome.error
                possibly = create_may_have_succeeded(error)
                failures[index] = create_failure(index, error, possibly_created=possibly)
                request_ids[index] = getattr(error, "request_id", None)
                if possibly and ledger is not None:
                    ledger.record(
                        index,
                        fingerprints[index],
                        PossiblyCreated=True,
                        Code=failures[index]["code"],
                        Message=failures[index]["message"],
                        RequestId=failures[index]["request_id"],
                    )
                self.log.warning("requests[%s] failed: %s", index, error)
                transient = possibly or bool(getattr(error, "transient", False))
                consecutive = consecutive + 1 if transient else 0
                if stop_reason is None and is_batch_fatal(error):
                    code = failures[index]["code"]
                    stop_reason = f"the batch stopped at requests[{index}], which failed with {code}."
                elif stop_reason is None and consecutive >= MAX_CONSECUTIVE_FAILURES:
                    stop_reason = (
                        f"the batch stopped after {consecutive} creates in a row failed with service or "
                        f"network errors, the last at requests[{index}]."
                    )
                if stop_reason is not None:
                    submitter.stop()
            progress.tick(done, self.log)
        if stop_reason is not None:
            self.log.error("Not all items were sent: %s", stop_reason)
        return stop_reason

    # -- waiting ------------------------------------------------------------------------------

    def _trigger(self, mps_task_ids: list[str]) -> Any:
        from airflow_provider_mps.triggers.mps import MpsAigcImageTasksTrigger

        wait = self.timeout if self.timeout is not None else _NO_DEADLINE_SECONDS
        return MpsAigcImageTasksTrigger(
            mps_task_ids=mps_task_ids,
            mps_conn_id=self.mps_conn_id,
            poll_interval=self.poll_interval,
            end_time=time.time() + wait,
            region=self.region,
            rate_limit=self.rate_limit,
        )

    def _complete(
        self,
        context: Context,
        event: dict[str, Any] | None,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
    ) -> list[str | None]:
        from airflow_provider_mps.operators._mps_batch import TIMED_OUT, item_failure
        from airflow_provider_mps.triggers.mps import validate_tasks_trigger_event

        expected = [task_id for index, task_id in enumerate(task_ids) if task_id and index not in failures]
        try:
            outcome = validate_tasks_trigger_event(event, mps_task_ids=expected)
        except MpsError:
            self._push(context, task_ids, request_ids, failures, image_urls=None)
            raise
        results = outcome["results"]
        image_urls: list[list[str]] = [[] for _ in task_ids]
        wait_failed: dict[int, str] = {}
        for index, task_id in enumerate(task_ids):
            if task_id is None or index in failures:
                continue
            result = results.get(task_id) or {}
            status = result.get("Status")
            if status == "DONE":
                image_urls[index] = list(result.get("ImageUrls") or [])
                continue
            message: str | None
            if status in ("WAIT", "RUN", None):
                code = TIMED_OUT
                message = f"Still {status or 'unknown'} when waiting ended: {outcome['message']}"
            else:
                code, message = str(result.get("Code") or status), result.get("Message")
            failures[index] = item_failure(
                index,
                stage="wait",
                code=code,
                message=message,
                request_id=result.get("RequestId"),
                mps_task_id=task_id,
            )
            wait_failed[index] = str(status)
        if wait_failed and self._too_many(failures):
            store = context.get("task_state_store") if self.durable else None
            if store is not None:
                from airflow_provider_mps.operators._mps_batch import BatchLedger

                # Items whose task ended without images are created anew by the retry.
                ended = {index: status for index, status in wait_failed.items() if status not in _UNFINISHED}
                BatchLedger(store, len(task_ids)).mark_failed(ended)
        done = sum(bool(urls) for urls in image_urls)
        self.log.info("%s of %s MPS task(s) are DONE; %s item(s) failed.", done, len(task_ids), len(failures))
        return self._finish(context, task_ids, request_ids, failures, image_urls=image_urls)

    # -- outcome ------------------------------------------------------------------------------

    def _too_many(self, failures: dict[int, dict[str, Any]]) -> bool:
        return self.max_failed_items is not None and len(failures) > self.max_failed_items

    def _push(
        self,
        context: Context,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
        image_urls: list[list[str]] | None,
    ) -> list[str | None]:
        returned = [None if index in failures else task_id for index, task_id in enumerate(task_ids)]
        ti = context["ti"]
        ti.xcom_push(key="return_value", value=returned)
        ti.xcom_push(key=BATCH_FAILURES_XCOM_KEY, value=[failures[index] for index in sorted(failures)])
        ti.xcom_push(key=BATCH_REQUEST_IDS_XCOM_KEY, value=request_ids)
        if image_urls is not None:
            ti.xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)
        return returned

    def _finish(
        self,
        context: Context,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
        image_urls: list[list[str]] | None,
        stopped: str | None = None,
    ) -> list[str | None]:
        from airflow_provider_mps.operators._mps_batch import TIMED_OUT, BatchLedger, is_refused_request

        returned = self._push(context, task_ids, request_ids, failures, image_urls)
        count = len(task_ids)
        if stopped is not None:
            raise MpsError(
                f"Not all items were sent: {stopped} {len(failures)} of {count} items failed; every failure "
                "is in the 'failures' XCom. A retry re-attaches to the tasks created and sends the rest."
            )
        if self._too_many(failures):
            ordered = [failures[index] for index in sorted(failures)]
            first = ordered[0]
            message = (
                f"{len(failures)} of {count} items failed, more than "
                f"max_failed_items={self.max_failed_items}; "
                f"the first, requests[{first['index']}], failed with {first['code']}: {first['message']} "
                f"(RequestId: {first['request_id'] or 'none'}). Every failure is in the 'failures' XCom."
            )
            if all(
                failure["stage"] == "create" and is_refused_request(failure["code"]) for failure in ordered
            ):
                raise AirflowFailException(
                    f"{message} The service refused these requests' parameters; the same requests cannot "
                    "succeed on a retry, so the task fails without retrying."
                )
            if all(failure["code"] == TIMED_OUT for failure in ordered):
                raise MpsTaskTimeoutError(message)
            raise MpsError(message)
        if failures:
            self.log.warning(
                "%s of %s items failed (at most %s allowed); see the 'failures' XCom.",
                len(failures),
                count,
                self.max_failed_items,
            )
        store = context.get("task_state_store")
        if store is not None and self.durable:
            # Done with this batch: a later clear of this task instance generates new images.
            BatchLedger(store, count).clear()
        self.log.info("Created %s MPS task(s) for %s item(s).", sum(t is not None for t in returned), count)
        return returned


def _first_event(trigger: Any) -> dict[str, Any]:
    """Run ``trigger`` on this worker until its one event: the sync wait shares the deferrable path."""
    import asyncio

    async def first() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return event.payload
        finally:
            await trigger.cleanup()
        raise MpsError("The batch trigger ended without an event.")

    return asyncio.run(first())
