"""Fixtures of the integration suite: one real Airflow cluster shared by every integration test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from tests.integration.airflow_cluster import provider_cluster

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
    from tests.integration.airflow_cluster import AirflowCluster


@pytest.fixture(scope="session")
def mps_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the example DAGs save images in the cluster (their ``mps_image_base`` Variable)."""
    return tmp_path_factory.mktemp("mps-images")


@pytest.fixture(scope="session")
def airflow_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    mps_emulator_server: ThreadedEmulatorServer,
    mps_image_dir: Path,
) -> Iterator[AirflowCluster]:
    """
    A running Airflow (API server, scheduler, DAG processor, triggerer) on loopback.

    Its DAGs folder holds ``dags_examples/`` (with its data files) and ``tests/integration/dags``.
    Its default MPS connection points at the session's emulator (which runs in this pytest
    process; the ``mps_emulator`` fixture resets it per test), and the examples' ``mps_image_base``
    Variable at :func:`mps_image_dir`.  Started once for the whole integration run and stopped at
    its end, even when tests fail.
    """
    cluster = provider_cluster(
        tmp_path_factory.mktemp("airflow-cluster"),
        mps_connection=EmulatorHandle.from_server(mps_emulator_server).airflow_connection(),
        image_base=mps_image_dir.as_uri(),
    )
    with cluster:
        yield cluster


@pytest.fixture
def cluster(airflow_cluster: AirflowCluster) -> Iterator[AirflowCluster]:
    """
    The shared cluster, checked healthy before the test uses it.

    Runs the test left unfinished (it failed or timed out) are failed afterwards, so they cannot
    reach the emulator during the next test.
    """
    airflow_cluster.wait_until_healthy(timeout=60)
    yield airflow_cluster
    airflow_cluster.fail_unfinished_runs()
