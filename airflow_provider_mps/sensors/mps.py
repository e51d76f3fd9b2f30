"""Sensor waiting for an MPS AIGC image task created anywhere (an operator, a conf value, ...)."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_mps import DEFAULT_CONN_ID, IMAGE_URLS_XCOM_KEY, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.links.mps import MpsAigcImageLink, MpsConsoleTaskLink

# The trigger module (with Airflow's airflow.triggers.base, ~5 ms), the exceptions and the TaskId
# check are imported where the sensor runs: a DAG file is parsed again and again without them.

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mps.hooks.mps import MpsHook


#: task_state_store key of the first try's start (Airflow 3.3+): ``timeout`` counts from it.
FIRST_TRY_KEY = "mps_aigc_image_task_sensor.first_try"

#: ``[sensors] default_timeout``, read once: Airflow's base sensor reads it for each sensor built.
_DEFAULT_TIMEOUT = conf.getfloat("sensors", "default_timeout", fallback=7 * 24 * 3600.0)


class MpsAigcImageTaskSensor(BaseSensorOperator):
    """
    Wait for an MPS AIGC image task to finish, in poke, reschedule or deferrable mode.

    Succeeds when the task is ``DONE`` and returns
    ``{"mps_task_id", "status", "image_urls", "message", "request_id"}`` as its XCom value (the
    URLs also go to the XCom key ``image_urls``); fails without retries when the task is ``FAIL``,
    with the service's message, the TaskId and the RequestId.  ``timeout``, ``soft_fail`` and
    ``never_fail`` behave as on every Airflow sensor: with ``soft_fail=True`` a failed or timed-out
    task skips the sensor instead.  Quota, service and network errors count as "not done yet".

    Deferred, the sensor waits in the triggerer (:class:`MpsAigcImageTaskTrigger`) and frees its
    worker slot; ``poke_interval`` is then the trigger's poll interval.

    Retries do not restart ``timeout`` (Airflow 3.3+): the first try's start is kept in the task's
    ``task_state_store`` and poke and deferrable modes measure from it, as Airflow's reschedule mode
    measures from the first try's first reschedule.  A clear starts the count again.  Before 3.3 there
    is no store: poke and deferrable modes measure from each try's start, as Airflow's own sensors do.

    :param mps_task_id: the MPS TaskId to wait for (templated), e.g. ``create.output``.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param region: the region overriding the connection's, if any.
    :param deferrable: wait in the triggerer instead of on a worker.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second the trigger's shared
        limiter allows for this account (deferrable mode).
    :param timeout: seconds (or a ``timedelta``) to wait before failing; defaults to
        ``[sensors] default_timeout``, read once when this module is imported (as the
        ``deferrable`` default is) rather than by every sensor built while parsing a DAG file.
    """

    template_fields: Sequence[str] = ("mps_task_id",)
    operator_extra_links = (MpsAigcImageLink(), MpsConsoleTaskLink())
    ui_color = "#e8f3ff"

    def __init__(
        self,
        *,
        mps_task_id: str,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        rate_limit: float = SERVICE_QUOTA_PER_SECOND,
        timeout: timedelta | float | None = _DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.mps_task_id = mps_task_id
        self.mps_conn_id = mps_conn_id
        self.region = region
        self.deferrable = deferrable
        self.rate_limit = rate_limit

    @cached_property
    def hook(self) -> MpsHook:
        """The hook to the service (built on first use)."""
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region)

    def execute(self, context: Context) -> Any:
        """Validate the TaskId, then poke (or reschedule) or check once and defer."""
        from airflow_provider_mps.utils.task_id import validate_mps_task_id

        self.mps_task_id = validate_mps_task_id(self.mps_task_id)
        started, earlier = self._first_try_started(context)
        remaining = self.timeout - (time.time() - started) if earlier else self.timeout
        if not self.deferrable and (self.reschedule or remaining > 0):
            if earlier and not self.reschedule:
                # BaseSensorOperator measures from now: give it what the earlier tries left.
                self.timeout = remaining
            return super().execute(context)
        try:
            done = self.poke(context)
        except AirflowFailException as error:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(
                    f"Skipping because soft_fail or never_fail is set: {error}"
                ) from error
            raise
        if done:
            return done.xcom_value if isinstance(done, PokeReturnValue) else None
        if remaining <= 0:
            message = (
                f"MPS task {self.mps_task_id} is not done {self.timeout:g} s after the sensor's first try "
                "started; retries do not restart the sensor's timeout."
            )
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

        self.log.info("Deferring until MPS task %s finishes", self.mps_task_id)
        self.defer(
            trigger=MpsAigcImageTaskTrigger(
                mps_task_id=self.mps_task_id,
                mps_conn_id=self.mps_conn_id,
                poll_interval=self.poke_interval,
                end_time=started + self.timeout,
                region=self.region,
                rate_limit=self.rate_limit,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def _first_try_started(self, context: Context) -> tuple[float, bool]:
        """
        When the first try of this run of the task started (epoch seconds), and whether it was an earlier try.

        Without a store (before Airflow 3.3) this try counts as the first.

        The first try's number is the one Airflow's own reschedule check uses
        (``max_tries - retries + 1``): a clear raises ``max_tries``, so it starts the count again.
        """
        now = time.time()
        store = context.get("task_state_store")
        if store is None:
            return now, False
        first_try = context["ti"].max_tries - (self.retries or 0) + 1
        stored = store.get(FIRST_TRY_KEY)
        if isinstance(stored, dict) and stored.get("FirstTry") == first_try:
            started = stored.get("StartedAt")
            if isinstance(started, (int, float)) and not isinstance(started, bool):
                return float(started), True
        store.set(FIRST_TRY_KEY, {"FirstTry": first_try, "StartedAt": now})
        return now, False

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """
        Describe the task once: done on ``DONE``, fail on ``FAIL``, keep waiting otherwise.

        :param context: the task context.
        """
        from airflow_provider_mps.core.api import DESCRIBE_ACTION
        from airflow_provider_mps.core.errors import Handling, classify
        from airflow_provider_mps.core.status import is_done, is_failed
        from airflow_provider_mps.exceptions import MpsError, MpsTaskFailedError

        try:
            result = self.hook.describe_aigc_image_task(self.mps_task_id)
        except MpsError as error:
            if classify(error, DESCRIBE_ACTION) is not Handling.RETRY:
                raise
            self.log.warning(
                "Could not describe MPS task %s, trying again later: %s", self.mps_task_id, error
            )
            return False
        status = result["Status"]
        if is_failed(status):
            failure = MpsTaskFailedError(self.mps_task_id, result.get("Message"), result.get("RequestId"))
            # AirflowFailException: no retry can change a finished task; soft_fail turns it into a skip.
            raise AirflowFailException(str(failure)) from failure
        if not is_done(status):
            self.log.info("MPS task %s is %s", self.mps_task_id, status)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, result))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        Resume after the trigger fired: validate its event and return the result.

        :param context: the task context.
        :param event: the trigger event payload.
        """
        from airflow_provider_mps.exceptions import MpsTaskFailedError, MpsTaskTimeoutError
        from airflow_provider_mps.triggers.mps import validate_trigger_event
        from airflow_provider_mps.utils.task_id import validate_mps_task_id

        # The fields are rendered afresh on resume: validate (and strip) the TaskId again.
        self.mps_task_id = validate_mps_task_id(self.mps_task_id)
        try:
            result = validate_trigger_event(event, mps_task_id=self.mps_task_id)
        except MpsTaskTimeoutError as error:
            raise AirflowSensorTimeout(str(error)) from error
        except MpsTaskFailedError as error:
            raise AirflowFailException(str(error)) from error
        return self._finish(context, result)

    def _finish(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        image_urls = list(result.get("ImageUrls") or [])
        context["ti"].xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)
        self.log.info("MPS task %s is DONE with %s image(s)", self.mps_task_id, len(image_urls))
        return {
            "mps_task_id": self.mps_task_id,
            "status": result["Status"],
            "image_urls": image_urls,
            "message": result.get("Message"),
            "request_id": result.get("RequestId"),
        }
