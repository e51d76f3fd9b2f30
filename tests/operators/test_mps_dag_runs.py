"""
MpsCreateAigcImageTaskOperator in real DAG runs (``dag.test()``) against the emulator.

Each test runs one DAG exercising several behaviours at once (a task run costs about a second), then
checks what the service received (the emulator's introspection) against what Airflow recorded
(task instance states and tries, XComs, the task state store).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS
from tests.operators._airflow_records import task_states, xcoms
from tests.operators._dag_runs import run_dag
from tests.operators.conftest import before_task_state_store, needs_task_state_store

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def created_requests(emulator: Any) -> dict[str, dict[str, Any]]:
    """What each CreateAigcImageTask received, keyed by the TaskId it created."""
    return {created["TaskId"]: created["Request"] for created in emulator.tasks()}


def create_request_ids(emulator: Any) -> set[str]:
    return {call["RequestId"] for call in emulator.requests() if call["Action"] == "CreateAigcImageTask"}


def test_prompt_and_structured_fields_render_from_xcom_params_conf_and_xcomargs(airflow_home, mps_conn):
    with DAG(
        "mps_operator_templating",
        schedule=None,
        start_date=START,
        params={"style": "watercolor", "urls": ["https://example.com/ref.png"]},
    ) as dag:

        @task
        def pick_subject() -> str:
            return "a lighthouse at dawn"

        @task
        def make_prompt(subject: str) -> str:
            return f"An ink drawing of {subject}"

        @task
        def make_extra_parameters() -> dict[str, Any]:
            return {"AspectRatio": "1:1", "LogoAdd": 1}

        subject = pick_subject()
        from_jinja = MpsCreateAigcImageTaskOperator(
            task_id="from_jinja",
            prompt=(
                "A {{ params.style }} of {{ ti.xcom_pull(task_ids='pick_subject') }} "
                "for {{ dag_run.conf['client'] }}"
            ),
            model_name="{{ dag_run.conf['model'] }}",
            image_infos="{{ params.urls | tojson }}",
            enhance_prompt="{{ dag_run.conf['enhance'] }}",
        )
        subject >> from_jinja
        MpsCreateAigcImageTaskOperator(
            task_id="from_xcomarg", prompt=make_prompt(subject), extra_parameters=make_extra_parameters()
        )

        @task
        def receive(mps_task_id: str) -> str:
            return f"received {mps_task_id}"

        receive(from_jinja.output)

    run = run_dag(dag, run_conf={"client": "ACME", "model": "GEM", "enhance": True})

    records = xcoms(run.run_id, dag.dag_id)
    jinja_id = records[("from_jinja", -1, "return_value")]
    xcomarg_id = records[("from_xcomarg", -1, "return_value")]
    assert created_requests(mps_conn) == {
        jinja_id: {
            "Prompt": "A watercolor of a lighthouse at dawn for ACME",
            "ModelName": "GEM",
            "ImageInfos": [{"ImageUrl": "https://example.com/ref.png"}],
            "EnhancePrompt": True,
        },
        xcomarg_id: {
            "Prompt": "An ink drawing of a lighthouse at dawn",
            "ExtraParameters": {"AspectRatio": "1:1", "LogoAdd": 1},
        },
    }
    assert records[("receive", -1, "return_value")] == f"received {jinja_id}"
    assert {records[("from_jinja", -1, "request_id")], records[("from_xcomarg", -1, "request_id")]} == (
        create_request_ids(mps_conn)
    )
    assert run.state == "success"


def test_mapped_instances_each_create_their_own_task_and_native_templates_keep_their_types(
    airflow_home, mps_conn
):
    with DAG(
        "mps_operator_mapping_native",
        schedule=None,
        start_date=START,
        render_template_as_native_obj=True,
        params={
            "subject": "a paper boat",
            "urls": ["https://example.com/a.png", "https://example.com/b.jpg"],
            "extra": {"Resolution": "2K", "OutputFormat": "png"},
            "count": 2,
        },
    ) as dag:

        @task
        def prompts() -> list[str]:
            return ["a red fox", "a blue whale"]

        @task
        def requests() -> list[dict[str, Any]]:
            return [
                {"prompt": "a cat", "model_name": "Kling", "model_version": "2.1"},
                {"prompt": "a dog", "extra_parameters": {"AspectRatio": "9:16"}},
            ]

        mapped = MpsCreateAigcImageTaskOperator.partial(task_id="mapped", model_name="GEM").expand(
            prompt=prompts()
        )
        MpsCreateAigcImageTaskOperator.partial(task_id="mapped_kwargs").expand_kwargs(requests())
        MpsCreateAigcImageTaskOperator(
            task_id="native",
            prompt="{{ params.subject }}",
            model_name="GEM",
            image_infos="{{ params.urls }}",
            extra_parameters="{{ params.extra }}",
            output_image_count="{{ params.count }}",
        )

        @task
        def collect(mps_task_ids: list[str]) -> list[str]:
            return list(mps_task_ids)

        collect(mapped.output)

    run = run_dag(dag)

    records = xcoms(run.run_id, dag.dag_id)
    ids = {
        (task_id, index): value for (task_id, index, key), value in records.items() if key == "return_value"
    }
    requests_by_id = created_requests(mps_conn)
    assert {
        (task_id, index): requests_by_id[ids[(task_id, index)]]
        for task_id, index in ids
        if task_id in ("mapped", "mapped_kwargs", "native")
    } == {
        ("mapped", 0): {"Prompt": "a red fox", "ModelName": "GEM"},
        ("mapped", 1): {"Prompt": "a blue whale", "ModelName": "GEM"},
        ("mapped_kwargs", 0): {"Prompt": "a cat", "ModelName": "Kling", "ModelVersion": "2.1"},
        ("mapped_kwargs", 1): {"Prompt": "a dog", "ExtraParameters": {"AspectRatio": "9:16"}},
        ("native", -1): {
            "Prompt": "a paper boat",
            "ModelName": "GEM",
            "ImageInfos": [
                {"ImageUrl": "https://example.com/a.png"},
                {"ImageUrl": "https://example.com/b.jpg"},
            ],
            "ExtraParameters": {"Resolution": "2K", "OutputFormat": "png"},
            "OutputImageCount": 2,
        },
    }
    assert len(requests_by_id) == 5
    assert ids[("collect", -1)] == [ids[("mapped", 0)], ids[("mapped", 1)]]
    assert run.state == "success"


def test_deferral_and_values_refused_at_run_time_in_a_dag_run(airflow_home, mps_conn):
    mps_conn.configure(run_seconds=1.0)
    no_retry_delay = {"retry_delay": datetime.timedelta(seconds=0)}
    with DAG(
        "mps_operator_deferral", schedule=None, start_date=START, params={"too_long": "x" * 1001}
    ) as dag:
        MpsCreateAigcImageTaskOperator(
            task_id="deferred",
            prompt="deferred once",
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
        )
        MpsCreateAigcImageTaskOperator(
            task_id="invalid", prompt="{{ params.too_long }}", retries=2, **no_retry_delay
        )
        MpsCreateAigcImageTaskOperator.partial(task_id="invalid_mapped", retries=2, **no_retry_delay).expand(
            prompt=["y" * 1001]
        )

    run = run_dag(dag)

    # A refused value fails at once: its retries are never used.
    assert task_states(run.run_id, dag.dag_id) == {
        ("deferred", -1): ("success", 1),
        ("invalid", -1): ("failed", 1),
        ("invalid_mapped", 0): ("failed", 1),
    }
    records = xcoms(run.run_id, dag.dag_id)
    [created] = mps_conn.tasks()
    assert (created["Request"]["Prompt"], records[("deferred", -1, "return_value")]) == (
        "deferred once",
        created["TaskId"],
    )
    assert records[("deferred", -1, "image_urls")] == [
        f"{mps_conn.endpoint}/images/{created['TaskId']}/0.png"
    ]
    assert records[("deferred", -1, "request_id")] == create_request_ids(mps_conn).pop()
    assert run.state == "failed"


class DiesAfterCreatingOnFirstTry(MpsCreateAigcImageTaskOperator):
    """Loses its worker right after the MPS task was created (and stored, on 3.3+), on the first try only."""

    def poll_until_complete(self, external_id: Any, context: Any) -> None:
        if context["ti"].try_number == 1:
            raise RuntimeError("Simulated worker loss after the MPS task was created.")
        super().poll_until_complete(external_id, context)


class DiesAfterFinishingOnFirstTry(MpsCreateAigcImageTaskOperator):
    """Loses its worker after the operator's work is done but before the task instance succeeded."""

    def execute(self, context: Any) -> str:
        mps_task_id = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("Simulated worker loss between the operator's return and the task's success.")
        return mps_task_id


RETRY = {"retries": 1, "retry_delay": datetime.timedelta(seconds=0), "poll_interval": 0.2}


@needs_task_state_store
def test_retries_reattach_through_the_task_state_store_instead_of_paying_twice(airflow_home, mps_conn):
    mps_conn.configure(run_seconds=1.0)
    with DAG("mps_operator_reattach", schedule=None, start_date=START) as dag:
        DiesAfterCreatingOnFirstTry(task_id="sync_reattach", prompt="sync", wait_for_completion=True, **RETRY)
        DiesAfterCreatingOnFirstTry(
            task_id="deferred_reattach", prompt="deferred", wait_for_completion=True, deferrable=True, **RETRY
        )
        DiesAfterCreatingOnFirstTry(task_id="no_wait_reattach", prompt="no wait", **RETRY)
        DiesAfterFinishingOnFirstTry(
            task_id="finished_reattach", prompt="finished", wait_for_completion=True, **RETRY
        )

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {
        ("sync_reattach", -1): ("success", 2),
        ("deferred_reattach", -1): ("success", 2),
        ("no_wait_reattach", -1): ("success", 2),
        ("finished_reattach", -1): ("success", 2),
    }
    records = xcoms(run.run_id, dag.dag_id)
    # Two tries each, yet one MPS task each: the second try re-attached, even after a first try whose
    # operator had finished (its TaskId is kept until the task instance succeeded, and after).
    prompts = {task["Request"]["Prompt"]: task["TaskId"] for task in mps_conn.tasks()}
    assert len(mps_conn.tasks()) == 4
    assert prompts == {
        "sync": records[("sync_reattach", -1, "return_value")],
        "deferred": records[("deferred_reattach", -1, "return_value")],
        "no wait": records[("no_wait_reattach", -1, "return_value")],
        "finished": records[("finished_reattach", -1, "return_value")],
    }
    assert {
        task_id: records.get((task_id, -1, "image_urls"))
        for task_id, _ in task_states(run.run_id, dag.dag_id)
    } == {
        "sync_reattach": [f"{mps_conn.endpoint}/images/{prompts['sync']}/0.png"],
        "deferred_reattach": [f"{mps_conn.endpoint}/images/{prompts['deferred']}/0.png"],
        "no_wait_reattach": None,
        "finished_reattach": [f"{mps_conn.endpoint}/images/{prompts['finished']}/0.png"],
    }
    # The request ids survive the retry (Airflow clears XComs at each new try; the store keeps them).
    assert {
        records[(task_id, -1, "request_id")]
        for task_id in ("sync_reattach", "deferred_reattach", "no_wait_reattach", "finished_reattach")
    } == create_request_ids(mps_conn)
    # [state_store] clear_on_success is False by default: the TaskIds stay, so a clear re-attaches.
    stored = stored_task_state(run.run_id, dag.dag_id)
    assert {key: job["TaskId"] for key, job in stored.items()} == {
        (task_id, -1, "mps_aigc_image_task"): records[(task_id, -1, "return_value")]
        for task_id in ("sync_reattach", "deferred_reattach", "no_wait_reattach", "finished_reattach")
    }


@needs_task_state_store
def test_with_clear_on_success_airflow_drops_the_stored_task_id_once_the_task_succeeded(
    airflow_home, mps_conn, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", "True")
    with DAG("mps_operator_clear_on_success", schedule=None, start_date=START) as dag:
        DiesAfterFinishingOnFirstTry(task_id="finished", prompt="finished", **RETRY)

    run = run_dag(dag)

    # The failed first try kept the TaskId for the retry (one MPS task); the success dropped it.
    assert task_states(run.run_id, dag.dag_id) == {("finished", -1): ("success", 2)}
    assert len(mps_conn.tasks()) == 1
    assert stored_task_state(run.run_id, dag.dag_id) == {}


#: ``dag.test()`` of Airflow 3.0-3.2 hands failure callbacks no exception; the message is checked elsewhere.
FAILURE_CALLBACKS_GET_THE_EXCEPTION = AIRFLOW_V_3_3_PLUS or not AIRFLOW_V_3_0_PLUS


class RecordsFailures:
    """``on_failure_callback`` / ``on_retry_callback`` keeping each failed try's exception message."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str, str]] = []

    def __call__(self, context: Any) -> None:
        error = context.get("exception")
        self.messages.append((context["ti"].try_number, type(error).__name__, str(error)))


def test_a_lost_create_response_fails_the_task_at_once_and_pays_once_despite_its_retries(
    airflow_home, mps_conn
):
    mps_conn.configure(drop_after_create_rate={"CreateAigcImageTask": 1.0})
    failures = RecordsFailures()
    with DAG("mps_operator_lost_create_response", schedule=None, start_date=START) as dag:
        MpsCreateAigcImageTaskOperator(
            task_id="lost",
            prompt="a lighthouse",
            retries=2,
            retry_delay=datetime.timedelta(0),
            on_failure_callback=failures,
            on_retry_callback=failures,
        )

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("lost", -1): ("failed", 1)}
    assert [task["Request"]["Prompt"] for task in mps_conn.tasks()] == ["a lighthouse"]
    [(try_number, error_type, message)] = failures.messages
    if not FAILURE_CALLBACKS_GET_THE_EXCEPTION:
        assert (try_number, error_type) == (1, "NoneType")
        return
    assert (try_number, error_type) == (1, "AirflowFailException")
    assert message.startswith("CreateAigcImageTask failed with ClientNetworkError.ConnectionLost: ")
    assert " UTC (RequestId none, prompt 'a lighthouse') may have created an MPS AIGC image task " in message
    assert message.endswith("set resubmit_on_retry=True on the operator.")


@before_task_state_store
def test_before_airflow_3_3_a_retry_reattaches_through_airflow_variables_which_go_on_success(
    airflow_home, mps_conn
):
    with DAG("mps_operator_variables", schedule=None, start_date=START) as dag:
        DiesAfterCreatingOnFirstTry(task_id="waits", prompt="waits", wait_for_completion=True, **RETRY)
        DiesAfterCreatingOnFirstTry(
            task_id="opted_in",
            prompt="opted in",
            wait_for_completion=True,
            resubmit_on_retry=True,  # only about creates whose outcome is unknown: no effect here
            **RETRY,
        )

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {
        ("waits", -1): ("success", 2),
        ("opted_in", -1): ("success", 2),
    }
    # Each retry found its first try's TaskId in a Variable and waited for it: one paid task each.
    by_prompt = {task["Request"]["Prompt"]: task["TaskId"] for task in mps_conn.tasks()}
    assert sorted(by_prompt) == ["opted in", "waits"]
    assert len(mps_conn.tasks()) == 2
    records = xcoms(run.run_id, dag.dag_id)
    assert records[("waits", -1, "return_value")] == by_prompt["waits"]
    assert records[("opted_in", -1, "return_value")] == by_prompt["opted in"]
    assert try_record_variables(dag.dag_id, run.run_id) == []


def try_record_variables(dag_id: str, run_id: str) -> list[str]:
    """The Variables the provider still keeps for retries of this run's task instances."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mps.operators._try_record import VARIABLE_PREFIX, VariableTryRecord

    records = [
        VariableTryRecord(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index).name + "."
        for task_id, map_index in task_states(run_id, dag_id)
    ]
    with create_session() as session:
        keys = session.scalars(select(Variable.key).where(Variable.key.like(f"{VARIABLE_PREFIX}.%")))
        return [key for key in keys if key.startswith(tuple(records))]


def stored_task_state(run_id: str, dag_id: str) -> dict[tuple[str, int, str], Any]:
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskStateStoreModel).where(
                TaskStateStoreModel.dag_id == dag_id, TaskStateStoreModel.run_id == run_id
            )
        ).scalars()
        return {(row.task_id, row.map_index, row.key): json.loads(row.value) for row in rows}
