"""
DAGs that fill a real triggerer: N ``MpsAigcImageTaskTrigger`` instances, and a control that blocks.

Both defer from the start (``start_from_trigger``): the scheduler writes their triggers without
a worker, so a thousand deferred tasks cost seconds, not a worker run each.  What they wait for
comes from the environment the test gives the cluster: ``MPS_LOAD_TASK_ID`` (an MPS task that
never finishes), ``MPS_LOAD_END_TIME`` and ``MPS_LOAD_TRIGGERS``.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import StartTriggerArgs

TRIGGERS = int(os.environ.get("MPS_LOAD_TRIGGERS", "1000"))


def from_start(trigger_cls: str, **trigger_kwargs: Any) -> StartTriggerArgs:
    """Run ``trigger_cls`` from the start, resuming in ``execute_complete``, with no timeout."""
    return StartTriggerArgs(
        trigger_cls=trigger_cls,
        trigger_kwargs=trigger_kwargs,
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )


class DeferredFromStart(BaseOperator):
    """A task that starts deferred (its class says with which trigger) and returns the event."""

    start_from_trigger = True

    def __init__(self, *, index: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return event


class WaitForMpsFromStart(DeferredFromStart):
    """Wait for the MPS task ``MPS_LOAD_TASK_ID`` in the triggerer."""

    start_trigger_args = from_start(
        "airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger",
        mps_task_id=os.environ.get("MPS_LOAD_TASK_ID", "unset"),
        mps_conn_id="tencentcloud_mps_default",
        poll_interval=600.0,
        end_time=float(os.environ.get("MPS_LOAD_END_TIME", "0")),
        rate_limit=20.0,
    )


class WaitForTheYear2100FromStart(DeferredFromStart):
    """The baseline: Airflow's own ``DateTimeTrigger``, which does nothing until its moment."""

    start_trigger_args = from_start(
        "airflow.triggers.temporal.DateTimeTrigger", moment=datetime(2100, 1, 1, tzinfo=timezone.utc)
    )


class BlockTheTriggerer(DeferredFromStart):
    """Run the control trigger, which holds the triggerer's event loop for three seconds."""

    start_trigger_args = from_start("tests.load._blocking_trigger.BlockingTrigger", seconds=3.0)


with DAG("mps_many_deferred", schedule=None, catchup=False, max_active_tasks=TRIGGERS):
    WaitForMpsFromStart.partial(task_id="wait").expand(index=list(range(TRIGGERS)))

with DAG("airflow_many_deferred", schedule=None, catchup=False, max_active_tasks=TRIGGERS):
    WaitForTheYear2100FromStart.partial(task_id="wait").expand(index=list(range(TRIGGERS)))

with DAG("triggerer_blocking_control", schedule=None, catchup=False):
    BlockTheTriggerer(task_id="block")
