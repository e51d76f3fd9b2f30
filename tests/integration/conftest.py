"""Fixtures of the integration suite: one real Airflow cluster shared by every integration test."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV, EmulatorHandle
from tests.integration.airflow_cluster import AirflowCluster

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

INTEGRATION_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "dags_examples"


def cluster_dag_files() -> list[Path]:
    """The project's example DAGs plus the DAGs written for these tests."""
    return sorted(EXAMPLE_DAGS.glob("*.py")) + sorted(INTEGRATION_DAGS.glob("*.py"))


@pytest.fixture(scope="session")
def airflow_cluster(
    tmp_path_factory: pytest.TempPathFactory, mps_emulator_server: ThreadedEmulatorServer
) -> Iterator[AirflowCluster]:
    """
    A running Airflow (API server, scheduler, DAG processor, triggerer) on loopback.

    Its default MPS connection points at the session's emulator (which runs in this pytest
    process; the ``mps_emulator`` fixture resets it per test).  Started once for the whole
    integration run and stopped at its end, even when tests fail.
    """
    emulator = EmulatorHandle(
        endpoint=mps_emulator_server.endpoint,
        secret_id=mps_emulator_server.secret_id,
        secret_key=mps_emulator_server.secret_key,
        token=mps_emulator_server.token,
    )
    root = tmp_path_factory.mktemp("airflow-cluster")
    env = {CONNECTION_ENV: emulator.airflow_connection()}
    with AirflowCluster(root, dag_files=cluster_dag_files(), extra_env=env) as cluster:
        yield cluster


@pytest.fixture
def cluster(airflow_cluster: AirflowCluster) -> AirflowCluster:
    """The shared cluster, checked healthy before the test uses it."""
    airflow_cluster.wait_until_healthy(timeout=60)
    return airflow_cluster
