"""
Fixtures of the distributed suite: one CeleryExecutor deployment shared by every distributed test.

The tests run only when the ``distributed`` marker is selected (``make test-distributed``, i.e.
``pytest -m distributed tests/distributed``); otherwise they are deselected, so ``make test``
needs neither PostgreSQL, Redis nor the Celery provider.  ``scripts/setup-distributed.sh``
installs all three.

Sizes: ``MPS_DISTRIBUTED_SCALE=full`` runs the sizes of issue 13 (two batches of 300 prompts, 400
deferred tasks); the default keeps the batches at 300 and runs 100 deferred tasks, so the whole
target stays within about 7 minutes on the 2-core machine (each deferred task is two task starts
on a worker, and the two workers start about one task instance per second).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from tests.distributed.deployment import WORKERS, Deployment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
    from tests.distributed.deployment import DistributedCluster

DISTRIBUTED_MARKER = "distributed"
DISTRIBUTED_TESTS = Path(__file__).resolve().parent
#: What the deployment needs beyond the main venv (scripts/setup-distributed.sh installs them).
NEEDED_MODULES = ("airflow.providers.celery", "psycopg2", "asyncpg", "limits", "redis")

FULL_SCALE = os.environ.get("MPS_DISTRIBUTED_SCALE", "").lower() == "full"
#: Prompts of each of the two concurrent batch runs (scenario 1).
BATCH_SIZE = 300
#: Deferred single-operator tasks waiting over both triggerers at once (scenario 2).
DEFERRED_COUNT = 400 if FULL_SCALE else 100
#: Prompts of the batch whose worker is killed (scenario 3).
KILL_BATCH_SIZE = 120
#: Deferred tasks waiting in the triggerer that is killed (scenario 3).
KILL_DEFERRED_COUNT = 24
#: Each triggerer runs at most this many triggers, so scenario 2's tasks land on both.
TRIGGERER_CAPACITY = max(DEFERRED_COUNT * 6 // 10, KILL_DEFERRED_COUNT)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{DISTRIBUTED_MARKER}: CeleryExecutor on PostgreSQL and Redis, 2 workers and 2 triggerers "
        "(make test-distributed)",
    )


def _distributed_selected(config: pytest.Config) -> bool:
    """Whether ``-m`` asks for the distributed tests."""
    return re.search(rf"(?<!not )\b{DISTRIBUTED_MARKER}\b", config.getoption("markexpr") or "") is not None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without the Celery provider and drivers, skip importing the test modules unless asked for."""
    if collection_path.parent != DISTRIBUTED_TESTS or _distributed_selected(config):
        return None
    if any(importlib.util.find_spec(name.split(".")[0]) is None for name in NEEDED_MODULES):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the distributed tests out unless the ``distributed`` marker is selected."""
    if _distributed_selected(config):
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        (left_out if item.get_closest_marker(DISTRIBUTED_MARKER) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, mps_emulator_server: ThreadedEmulatorServer
) -> Iterator[Deployment]:
    """
    The distributed deployment, in the shared quota mode, started once and stopped at the end.

    Its default MPS connection points at the session's emulator (in this pytest process).
    """
    missing = [name for name in NEEDED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup-distributed.sh")
    with Deployment(
        tmp_path_factory.mktemp("distributed"),
        mps_connection=EmulatorHandle.from_server(mps_emulator_server).airflow_connection(),
        shared_quota=True,
        triggerer_capacity=TRIGGERER_CAPACITY,
    ) as started:
        cluster = started.cluster
        dag_ids = [
            "distributed_batch_worker_1",
            "distributed_batch_worker_2",
            "distributed_batch_default",
            "distributed_deferred",
        ]
        cluster.wait_for_dags(dag_ids, timeout=180)
        for dag_id in dag_ids:
            cluster.unpause(dag_id)
        yield started


@pytest.fixture
def cluster(deployment: Deployment) -> Iterator[DistributedCluster]:
    """
    The deployment's Airflow, healthy with both workers and both triggerers before each test.

    Runs a failed test left unfinished are failed afterwards; a component a test killed is started
    again.
    """
    cluster = deployment.cluster
    for component in ("triggerer-1", "triggerer-2", *WORKERS):
        if component not in cluster.running():
            cluster.restart_component(component)
    cluster.wait_until_healthy(timeout=120)
    cluster.wait_for(cluster.workers_ready, timeout=120, what=lambda: "both Celery workers to be ready")
    yield cluster
    cluster.fail_unfinished_runs()
