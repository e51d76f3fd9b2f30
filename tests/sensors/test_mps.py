from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError
from airflow_provider_mps.links.mps import MPS_CONSOLE_AIGC_TASK_URL
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.utils.rate_limit import clear_rate_limiters
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS
from tests.links._links import extra_link_urls
from tests.operators._dag_runs import run_dag
from tests.sensors._records import states, xcoms

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAIL_MESSAGE = "Image generation failed: the prompt asked the emulator to fail this task."


@pytest.fixture(autouse=True)
def _airflow(airflow_home):
    clear_rate_limiters()
    return airflow_home


def _create(prompt: str = "A lighthouse at dawn") -> str:
    from airflow_provider_mps.hooks.mps import MpsHook

    return MpsHook().create_aigc_image_task(prompt=prompt, model_name="GEM")


def _sensor(task_id: str, mps_task_id: str, **kwargs) -> MpsAigcImageTaskSensor:
    return MpsAigcImageTaskSensor(task_id=task_id, mps_task_id=mps_task_id, poke_interval=0.2, **kwargs)


def _when_described(emulator, times: int, then) -> threading.Thread:
    """Call ``then()`` once the emulator has answered ``times`` describes (from the test's side)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            described = [r for r in emulator.requests() if r["Action"] == "DescribeAigcImageTask"]
            if len(described) >= times:
                then()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_poke_mode_returns_the_result_on_done_and_fails_or_skips_on_fail(mps_conn):
    done = _create()
    failed = _create("A lighthouse [emulator:fail]")
    with DAG("mps_sensor_poke", schedule=None, start_date=START) as dag:
        _sensor("done", "{{ dag_run.conf['mps_task_id'] }}", mode="poke")
        _sensor("fail", failed, mode="poke")
        _sensor("fail_soft", failed, mode="poke", soft_fail=True)

    run = run_dag(dag, run_conf={"mps_task_id": done})

    image_urls = [f"{mps_conn.endpoint}/images/{done}/0.png"]
    assert states(dag.dag_id, run.run_id) == {"done": "success", "fail": "failed", "fail_soft": "skipped"}
    values = xcoms(dag.dag_id, run.run_id)
    done_values = {key: value for (task, key), value in values.items() if task == "done"}
    assert done_values == {
        "return_value": {
            "mps_task_id": done,
            "status": "DONE",
            "image_urls": image_urls,
            "message": done_values["return_value"]["message"],
            "request_id": done_values["return_value"]["request_id"],
        },
        "image_urls": image_urls,
    }
    assert done_values["return_value"]["request_id"] in {r["RequestId"] for r in mps_conn.requests()}
    assert extra_link_urls(dag, run.run_id, "done") == {
        "MPS Generated Image": image_urls[0],
        "MPS Console": f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId={done}",
    }
    # A failed sensor pushes nothing and links no image, but still links the MPS console page of its task.
    assert {key: value for (task, key), value in values.items() if task == "fail"} == {}
    assert extra_link_urls(dag, run.run_id, "fail") == {
        "MPS Generated Image": "",
        "MPS Console": f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId={failed}",
    }


def test_deferrable_sensor_waits_in_the_trigger_and_returns_the_result(mps_conn, caplog):
    mps_task_id = _create()
    mps_conn.force_status(mps_task_id, "RUN")
    # The sensor's own check and the trigger's first poll both see RUN; then the task finishes.
    watcher = _when_described(mps_conn, 2, lambda: mps_conn.force_status(mps_task_id, "DONE"))
    with DAG("mps_sensor_deferrable", schedule=None, start_date=START) as dag:
        _sensor("wait", mps_task_id, deferrable=True)

    # dag.test() logs it from airflow.sdk.definitions.dag on Airflow 3, airflow.models.dag on Airflow 2.
    dag_test_logger = "airflow.sdk.definitions.dag" if AIRFLOW_V_3_0_PLUS else "airflow.models.dag"
    with caplog.at_level("INFO", logger=dag_test_logger):
        run = run_dag(dag)
    watcher.join()

    image_urls = [f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"]
    assert states(dag.dag_id, run.run_id) == {"wait": "success"}
    values = xcoms(dag.dag_id, run.run_id)
    assert values[("wait", "return_value")] == {
        "mps_task_id": mps_task_id,
        "status": "DONE",
        "image_urls": image_urls,
        "message": values[("wait", "return_value")]["message"],
        "request_id": values[("wait", "return_value")]["request_id"],
    }
    assert values[("wait", "image_urls")] == image_urls
    assert extra_link_urls(dag, run.run_id, "wait")["MPS Generated Image"] == image_urls[0]
    assert "[DAG TEST] running trigger in line" in caplog.messages
    describes = [r for r in mps_conn.requests() if r["Action"] == "DescribeAigcImageTask"]
    assert values[("wait", "return_value")]["request_id"] == describes[-1]["RequestId"]
    assert len(describes) >= 3


def test_sensor_times_out_or_skips_with_soft_fail_in_every_mode(mps_conn):
    mps_task_id = _create()
    mps_conn.force_status(mps_task_id, "RUN")
    with DAG("mps_sensor_timeouts", schedule=None, start_date=START) as dag:
        _sensor("poke_timeout", mps_task_id, mode="poke", timeout=1)
        _sensor("defer_timeout", mps_task_id, deferrable=True, timeout=1)
        _sensor("defer_timeout_soft", mps_task_id, deferrable=True, timeout=1, soft_fail=True)

    run = run_dag(dag)

    assert states(dag.dag_id, run.run_id) == {
        "poke_timeout": "failed",
        "defer_timeout": "failed",
        "defer_timeout_soft": "skipped",
    }


def test_reschedule_mode_frees_the_worker_between_pokes(mps_conn):
    mps_task_id = _create()
    mps_conn.force_status(mps_task_id, "RUN")
    watcher = _when_described(mps_conn, 1, lambda: mps_conn.force_status(mps_task_id, "DONE"))
    with DAG("mps_sensor_reschedule", schedule=None, start_date=START) as dag:
        MpsAigcImageTaskSensor(task_id="wait", mps_task_id=mps_task_id, mode="reschedule", poke_interval=1)

    run = run_dag(dag)
    watcher.join()

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    assert states(dag.dag_id, run.run_id) == {"wait": "success"}
    assert xcoms(dag.dag_id, run.run_id)[("wait", "image_urls")] == [
        f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"
    ]
    count = select(func.count()).select_from(TaskReschedule)
    if AIRFLOW_V_3_0_PLUS:  # a reschedule belongs to a task instance by its id since Airflow 3.0
        count = count.join(TaskInstance, TaskInstance.id == TaskReschedule.ti_id).where(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id
        )
    else:
        count = count.where(TaskReschedule.dag_id == dag.dag_id, TaskReschedule.run_id == run.run_id)
    with create_session() as session:
        reschedules = session.scalar(count)
    # The first poke saw RUN and gave the worker back; the poke after the reschedule saw DONE.
    assert reschedules == 1


def _event(status: str, mps_task_id: str, result=None, message: str = "") -> dict:
    return {"status": status, "mps_task_id": mps_task_id, "result": result, "message": message}


def test_resuming_on_a_failed_event_fails_without_retries_naming_task_and_request():
    sensor = _sensor("wait", "task-1", deferrable=True)
    failed = {
        "TaskId": "task-1",
        "Status": "FAIL",
        "ImageUrls": [],
        "Message": FAIL_MESSAGE,
        "RequestId": "r-1",
    }

    with pytest.raises(AirflowFailException) as error:
        sensor.execute_complete({}, _event("failed", "task-1", failed, FAIL_MESSAGE))

    assert str(error.value) == f"MPS task task-1 failed: {FAIL_MESSAGE} (RequestId: r-1)"


def test_resuming_on_a_success_event_returns_the_result_for_a_task_id_rendered_with_spaces():
    class TaskInstance:
        def __init__(self):
            self.pushed = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = TaskInstance()
    sensor = _sensor("wait", " task-1\n", deferrable=True)
    done = {"TaskId": "task-1", "Status": "DONE", "ImageUrls": ["https://cos.example/0.png"], "Message": ""}
    done["RequestId"] = "r-2"

    event = _event("success", "task-1", done, "MPS task task-1 is DONE.")

    result = sensor.execute_complete({"ti": ti}, event)

    assert result == {
        "mps_task_id": "task-1",
        "status": "DONE",
        "image_urls": ["https://cos.example/0.png"],
        "message": "",
        "request_id": "r-2",
    }
    assert ti.pushed == {"image_urls": ["https://cos.example/0.png"]}


def test_resuming_on_a_timeout_event_raises_the_sensor_timeout():
    sensor = _sensor("wait", "task-1", deferrable=True)

    with pytest.raises(AirflowSensorTimeout) as error:
        sensor.execute_complete({}, _event("timeout", "task-1", None, "MPS task task-1 did not finish."))

    assert str(error.value) == "MPS task task-1 did not finish."


def test_resuming_on_an_event_for_another_task_is_an_error():
    sensor = _sensor("wait", "task-1", deferrable=True)

    with pytest.raises(MpsError) as error:
        sensor.execute_complete({}, _event("success", "task-2"))

    assert str(error.value) == "The trigger event is for MPS task 'task-2', but the task waited for 'task-1'."


def test_deferrable_sensor_on_an_already_failed_task_skips_with_soft_fail_before_deferring(mps_conn):
    failed = _create("A lighthouse")
    mps_conn.force_status(failed, "FAIL", message=FAIL_MESSAGE)
    sensor = _sensor("wait", f"  {failed}  ", deferrable=True, soft_fail=True)

    with pytest.raises(AirflowSkipException) as error:
        sensor.execute({})

    request_id = [r for r in mps_conn.requests() if r["Action"] == "DescribeAigcImageTask"][-1]["RequestId"]
    assert str(error.value) == (
        "Skipping because soft_fail or never_fail is set: "
        f"MPS task {failed} failed: {FAIL_MESSAGE} (RequestId: {request_id})"
    )


@pytest.mark.parametrize("mps_task_id", ["", "   ", "None"])
def test_blank_task_id_fails_before_anything_is_sent(mps_conn, mps_task_id):
    sensor = _sensor("wait", mps_task_id)

    with pytest.raises(MpsInvalidParameterError) as error:
        sensor.execute({})

    assert error.value.field == "mps_task_id"
    assert mps_conn.requests() == []


def test_task_id_is_a_template_field():
    assert MpsAigcImageTaskSensor.template_fields == ("mps_task_id",)
