"""
Triggers read their connection without a blocking lookup on the event loop, on every Airflow line.

A sync ``get_connection`` (or ``mask_secret``) on a triggerer's event loop fails on Airflow 3.0:
the triggerer's supervisor channel answers sync calls through ``async_to_sync``, which refuses
the loop's own thread.  The hook reads the connection through common-compat's
``get_async_connection`` / ``get_async_extra_dejson`` and masks through ``amask_secret`` (3.3)
or the sync call in a worker thread (before).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.triggers.mps import MpsAigcImageBatchTrigger, MpsAigcImageTaskTrigger
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable

CONN_ID = "tencentcloud_mps_default"


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


def _on_event_loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class TriggererComms:
    """
    Stand-in for the triggerer's ``SUPERVISOR_COMMS``, sending the way Airflow 3.0's does.

    Its sync :meth:`send` is ``async_to_sync(self.asend)``, as in 3.0's ``TriggerCommsDecoder``:
    asgiref refuses it on the event loop's own thread, routes it to the trigger's loop from a
    ``sync_to_async`` worker thread, and runs it on a loop of its own from any other thread, where
    the real channel (a stream of the trigger's loop) cannot be used.  Messages that reach the
    trigger's loop are kept; the "supervisor" answers nothing.

    :param loop: the trigger's event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.received: list[Any] = []
        self.refused: list[str] = []

    def send(self, msg: Any) -> None:
        from asgiref.sync import async_to_sync

        try:
            async_to_sync(self.asend)(msg)
        except RuntimeError:
            self.refused.append(type(msg).__name__)
            raise

    async def asend(self, msg: Any) -> None:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError(f"{type(msg).__name__} sent from an event loop that is not the triggerer's.")
        self.received.append(msg)

    def masked(self) -> list[Any]:
        return [msg.value for msg in self.received if type(msg).__name__ == "MaskSecret"]


@pytest.fixture
def as_triggerer(monkeypatch: pytest.MonkeyPatch) -> Callable[[], TriggererComms]:
    """Call from the test's event loop to run the rest as in a triggerer: ``SUPERVISOR_COMMS`` is set."""
    from airflow.sdk.execution_time import task_runner

    def install() -> TriggererComms:
        comms = TriggererComms(asyncio.get_running_loop())
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
        return comms

    return install


@pytest.fixture
def sync_lookups(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every sync ``MpsHook.get_connection`` call, as whether it ran on an event loop's thread."""
    calls: list[bool] = []
    original = MpsHook.get_connection

    def recording(cls: type[MpsHook], conn_id: str) -> Any:
        calls.append(_on_event_loop_thread())
        return original(conn_id)

    monkeypatch.setattr(MpsHook, "get_connection", classmethod(recording))
    return calls


def _create() -> str:
    return MpsHook().create_aigc_image_task(prompt="A lighthouse at dawn", model_name="GEM")


@pytest.mark.asyncio
async def test_trigger_never_looks_the_connection_up_synchronously_on_the_event_loop(mps_conn, sync_lookups):
    task_id = await asyncio.to_thread(_create)
    sync_lookups.clear()
    trigger = MpsAigcImageTaskTrigger(
        mps_task_id=task_id, mps_conn_id=CONN_ID, poll_interval=0.05, end_time=time.time() + 10
    )

    events = [event.payload async for event in trigger.run()]
    await trigger.cleanup()

    assert [(e["status"], e["result"]["Status"]) for e in events] == [("success", "DONE")]
    # 3.3: BaseHook.aget_connection, no sync lookup at all.  Before: the sync lookup, once, in a
    # worker thread (common-compat's get_async_connection).
    assert sync_lookups == ([] if AIRFLOW_V_3_3_PLUS else [False])


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="Airflow 2's triggerer reads connections from the database."
)
@pytest.mark.asyncio
async def test_trigger_yields_done_under_a_triggerers_supervisor_channel(mps_conn, as_triggerer):
    task_id = await asyncio.to_thread(_create)
    triggerer_comms = as_triggerer()
    trigger = MpsAigcImageTaskTrigger(
        mps_task_id=task_id, mps_conn_id=CONN_ID, poll_interval=0.05, end_time=time.time() + 10
    )

    events = [event.payload async for event in trigger.run()]
    await trigger.cleanup()

    [event] = events
    assert (event["status"], event["mps_task_id"], event["result"]["Status"]) == ("success", task_id, "DONE")
    assert triggerer_comms.refused == []
    # The SecretKey reached the supervisor's masker, not only this process's.
    assert mps_conn.secret_key in triggerer_comms.masked()


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="Airflow 2's triggerer reads connections from the database."
)
@pytest.mark.asyncio
async def test_batch_trigger_yields_success_under_a_triggerers_supervisor_channel(mps_conn, as_triggerer):
    task_ids = [await asyncio.to_thread(_create) for _ in range(2)]
    triggerer_comms = as_triggerer()
    trigger = MpsAigcImageBatchTrigger(
        mps_task_ids=task_ids, mps_conn_id=CONN_ID, poll_interval=0.05, end_time=time.time() + 10
    )

    events = [event.payload async for event in trigger.run()]
    await trigger.cleanup()

    [event] = events
    assert (event["status"], [result["Status"] for result in event["results"]]) == (
        "success",
        ["DONE", "DONE"],
    )
    assert triggerer_comms.refused == []
    assert mps_conn.secret_key in triggerer_comms.masked()
