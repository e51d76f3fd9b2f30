"""
The provider on a distributed deployment: CeleryExecutor, 2 workers, 2 triggerers, one quota.

Every assertion is on the emulator's own logs (each task it created, with the prompt it received,
and each request with the time it arrived) and on Airflow's REST API, never on a duration.  The
deployment runs in the shared quota mode (``[tencentcloud_mps] quota_storage_uri`` on its Redis),
so no one-second window at the emulator holds more than the account's 20 requests of an action.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps import IMAGE_URLS_XCOM_KEY, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.operators._mps_batch_submit import SUBMIT_THREADS
from tests.distributed.conftest import (
    BATCH_SIZE,
    DEFERRED_COUNT,
    KILL_BATCH_SIZE,
    KILL_DEFERRED_COUNT,
)
from tests.distributed.deployment import TASK_HEARTBEAT_TIMEOUT, TRIGGERERS, WORKERS
from tests.integration.airflow_cluster import FINISHED_RUN_STATES, TRIGGERER_HEALTH_CHECK_THRESHOLD
from tests.utils.test_shared_quota import busiest_window

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.distributed.deployment import DistributedCluster

pytestmark = pytest.mark.distributed

CREATE, DESCRIBE = "CreateAigcImageTask", "DescribeAigcImageTask"
DEFERRED_DAG = "distributed_deferred"


def prompts(label: str, count: int) -> list[str]:
    """The prompts a run of the suite's DAGs sends (``distributed_mps.build_prompts``)."""
    return [f"{label} #{index:04d}" for index in range(count)]


def created_prompts(emulator: EmulatorHandle, label: str) -> collections.Counter[str]:
    """How many MPS tasks the emulator created for each prompt of run ``label``."""
    return collections.Counter(
        task["Request"]["Prompt"]
        for task in emulator.tasks()
        if str(task["Request"].get("Prompt", "")).startswith(f"{label} #")
    )


def quota_report(emulator: EmulatorHandle) -> dict[str, Any]:
    """Per action: the busiest one-second window at the emulator, and the requests it refused."""
    requests = emulator.requests()
    report: dict[str, Any] = {}
    for action in (CREATE, DESCRIBE):
        mine = [r for r in requests if r["Action"] == action]
        report[action] = {
            "busiest second": busiest_window([r["Time"] for r in mine]),
            "refused": sum(1 for r in mine if (r["ErrorCode"] or "").startswith("RequestLimitExceeded")),
        }
    return report


def watch_run(
    cluster: DistributedCluster, dag_id: str, run_id: str, *, timeout: float, on_poll: Any = None
) -> str:
    """Poll a run until it finishes; ``on_poll(task_instances)`` sees every poll.  Its final state."""
    state = ""

    def finished() -> bool:
        nonlocal state
        cluster._check_alive()
        if on_poll is not None:
            on_poll(cluster.all_task_instances(dag_id, run_id))
        state = cluster.dag_run(dag_id, run_id)["state"]
        return state in FINISHED_RUN_STATES

    cluster.wait_for(finished, timeout=timeout, interval=1.0, what=lambda: f"run {run_id} of {dag_id}")
    return state


def test_two_batches_on_two_workers_create_every_prompt_exactly_once(
    cluster: DistributedCluster, mps_emulator: EmulatorHandle
) -> None:
    runs = {
        worker: (
            f"distributed_batch_{worker.replace('-', '_')}",
            cluster.trigger(
                f"distributed_batch_{worker.replace('-', '_')}", {"count": BATCH_SIZE, "label": worker}
            ),
        )
        for worker in WORKERS
    }

    states = {worker: watch_run(cluster, *runs[worker], timeout=420) for worker in WORKERS}

    assert states == dict.fromkeys(WORKERS, "success"), cluster.diagnostics()
    for worker, (dag_id, run_id) in runs.items():
        assert created_prompts(mps_emulator, worker) == collections.Counter(prompts(worker, BATCH_SIZE))
        generate = cluster.task_instances(dag_id, run_id)["generate"]
        # The queue is served by that worker only, and its log shows it ran the batch.
        assert (generate["queue"], generate["try_number"]) == (worker, 1)
        assert dag_id in (cluster.log_dir / f"{worker}.log").read_text(errors="replace")
        task_ids = cluster.xcom(dag_id, run_id, "generate")
        image_urls = cluster.xcom(dag_id, run_id, "generate", IMAGE_URLS_XCOM_KEY)
        assert (len(task_ids), None in task_ids) == (BATCH_SIZE, False)
        assert [bool(urls) for urls in image_urls] == [True] * BATCH_SIZE
    report = quota_report(mps_emulator)
    assert report[CREATE]["busiest second"] <= SERVICE_QUOTA_PER_SECOND, report
    assert report[DESCRIBE]["busiest second"] <= SERVICE_QUOTA_PER_SECOND, report


def test_deferred_tasks_over_both_triggerers_resume_with_their_images_within_the_quota(
    cluster: DistributedCluster, mps_emulator: EmulatorHandle
) -> None:
    label = "deferred"
    run_id = cluster.trigger(DEFERRED_DAG, {"count": DEFERRED_COUNT, "label": label})
    triggerers_seen: set[int] = set()

    def note_triggerers(tis: list[dict[str, Any]]) -> None:
        for ti in tis:
            if ti["state"] == "deferred" and ti.get("trigger") and ti["trigger"].get("triggerer_id"):
                triggerers_seen.add(ti["trigger"]["triggerer_id"])

    state = watch_run(cluster, DEFERRED_DAG, run_id, timeout=600, on_poll=note_triggerers)

    tis = [ti for ti in cluster.all_task_instances(DEFERRED_DAG, run_id) if ti["task_id"] == "generate"]
    assert state == "success", cluster.diagnostics()
    assert sorted((ti["map_index"], ti["state"]) for ti in tis) == [
        (index, "success") for index in range(DEFERRED_COUNT)
    ]
    assert triggerers_seen == set(cluster.triggerer_jobs.values())
    assert created_prompts(mps_emulator, label) == collections.Counter(prompts(label, DEFERRED_COUNT))
    done = {task["TaskId"]: task["ImageUrls"] for task in mps_emulator.tasks()}
    for index in range(DEFERRED_COUNT):
        task_id = cluster.xcom(DEFERRED_DAG, run_id, "generate", map_index=index)
        urls = cluster.xcom(DEFERRED_DAG, run_id, "generate", IMAGE_URLS_XCOM_KEY, map_index=index)
        assert (urls, bool(urls)) == (done[task_id], True)
    report = quota_report(mps_emulator)
    assert report[DESCRIBE]["busiest second"] <= SERVICE_QUOTA_PER_SECOND, report
    assert report[CREATE]["busiest second"] <= SERVICE_QUOTA_PER_SECOND, report


def test_a_worker_killed_mid_batch_is_retried_on_the_other_and_reattaches(
    cluster: DistributedCluster, mps_emulator: EmulatorHandle
) -> None:
    dag_id, label = "distributed_batch_default", "killed-worker"
    run_id = cluster.trigger(dag_id, {"count": KILL_BATCH_SIZE, "label": label})
    victim: list[str] = []

    def submitting() -> bool:
        ti = cluster.task_instances(dag_id, run_id).get("generate")
        if ti is None or ti["state"] != "running" or sum(created_prompts(mps_emulator, label).values()) < 30:
            return False
        pids = [proc.pid for proc in cluster.task_processes(ti["id"])] + [ti["pid"]] * bool(ti.get("pid"))
        victim.extend(filter(None, map(cluster.component_of, pids)))
        return bool(victim)

    cluster.wait_for(submitting, timeout=240, what=lambda: "the batch to be submitting on a worker")
    killed = victim[0]
    assert killed in WORKERS
    created_before_kill = sum(created_prompts(mps_emulator, label).values())
    cluster.kill_component(killed)

    # The scheduler fails the try once its heartbeats stop; the retry runs on the other worker.
    state = watch_run(cluster, dag_id, run_id, timeout=TASK_HEARTBEAT_TIMEOUT + 300)

    tries = cluster.tries(dag_id, run_id, "generate")
    assert state == "success", cluster.explain(dag_id, run_id)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert created_before_kill < KILL_BATCH_SIZE
    survivor = next(worker for worker in WORKERS if worker != killed)
    assert dag_id in (cluster.log_dir / f"{survivor}.log").read_text(errors="replace")
    # Nothing created twice: the ledger is written ahead, so the items whose creates were in flight
    # at the kill (at most one per submit thread) are not sent again; the retry names them as
    # failures.  Nothing lost: every other item has its MPS task and its images.
    created = created_prompts(mps_emulator, label)
    twice = sorted(prompt for prompt, count in created.items() if count > 1)
    assert twice == []
    failures = cluster.xcom(dag_id, run_id, "generate", "failures")
    in_flight = {prompts(label, KILL_BATCH_SIZE)[failure["index"]] for failure in failures}
    assert len(in_flight) <= SUBMIT_THREADS, failures
    assert {(failure["code"], failure["possibly_created"]) for failure in failures} <= {
        ("ClientError.TryEnded", True)
    }
    assert sorted(set(created) | in_flight) == prompts(label, KILL_BATCH_SIZE)
    image_urls = cluster.xcom(dag_id, run_id, "generate", IMAGE_URLS_XCOM_KEY)
    assert [bool(urls) for urls in image_urls] == [
        prompt not in in_flight for prompt in prompts(label, KILL_BATCH_SIZE)
    ]


def test_the_other_triggerer_takes_over_when_one_is_killed_mid_wait(
    cluster: DistributedCluster, mps_emulator: EmulatorHandle
) -> None:
    label = "killed-triggerer"
    mps_emulator.configure(run_seconds=600)  # the MPS tasks run until the test says they are done
    run_id = cluster.trigger(DEFERRED_DAG, {"count": KILL_DEFERRED_COUNT, "label": label})
    holders: collections.Counter[int] = collections.Counter()

    def all_deferred() -> bool:
        tis = [t for t in cluster.all_task_instances(DEFERRED_DAG, run_id) if t["task_id"] == "generate"]
        holders.clear()
        holders.update(
            t["trigger"]["triggerer_id"]
            for t in tis
            if t["state"] == "deferred" and t.get("trigger") and t["trigger"].get("triggerer_id")
        )
        return sum(holders.values()) == KILL_DEFERRED_COUNT

    cluster.wait_for(all_deferred, timeout=300, what=lambda: f"every task deferred (holders: {holders})")
    busiest_job = holders.most_common(1)[0][0]
    killed = next(name for name, job in cluster.triggerer_jobs.items() if job == busiest_job)
    survivor_job = cluster.triggerer_jobs[next(name for name in TRIGGERERS if name != killed)]
    cluster.kill_component(killed)

    # Once the dead triggerer misses its health check, the survivor picks up its triggers.
    cluster.wait_for(
        lambda: all_deferred() and set(holders) == {survivor_job},
        timeout=TRIGGERER_HEALTH_CHECK_THRESHOLD + 120,
        what=lambda: f"triggerer job {survivor_job} to hold every trigger (holders: {holders})",
    )
    for task in mps_emulator.tasks():
        if task["Request"]["Prompt"].startswith(f"{label} #"):
            mps_emulator.force_status(task["TaskId"], "DONE")
    state = watch_run(cluster, DEFERRED_DAG, run_id, timeout=300)

    tis = [t for t in cluster.all_task_instances(DEFERRED_DAG, run_id) if t["task_id"] == "generate"]
    assert state == "success", cluster.diagnostics()
    assert sorted((t["map_index"], t["state"], t["try_number"]) for t in tis) == [
        (index, "success", 1) for index in range(KILL_DEFERRED_COUNT)
    ]
    assert created_prompts(mps_emulator, label) == collections.Counter(prompts(label, KILL_DEFERRED_COUNT))
    for index in range(KILL_DEFERRED_COUNT):
        assert cluster.xcom(DEFERRED_DAG, run_id, "generate", IMAGE_URLS_XCOM_KEY, map_index=index)
