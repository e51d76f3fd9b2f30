"""
The spend metrics, read from a real StatsD listener: a UDP socket on loopback.

Each case runs the metrics in a fresh Python process configured by ``[metrics]`` environment
variables, as Airflow's own processes are, with its metrics set up the way a worker or triggerer
sets them up on that Airflow line (:data:`EMITTER`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys

import airflow.providers.common.compat.sdk as compat_sdk
import pytest

from airflow_provider_mps.core import metrics
from tests.conftest import REPO_ROOT

needs_statsd = pytest.mark.skipif(
    importlib.util.find_spec("statsd") is None,
    reason="the statsd client is not installed (Airflow's statsd extra; in the provider's dev extra)",
)

#: A process of the deployment that counts what one sent batch, one refused create and one
#: possible duplicate would count.  From Airflow 3.2 each Airflow process (task runner, triggerer)
#: sets up its metrics backend at start; before, ``Stats`` sets itself up from ``[metrics]``.
EMITTER = """
try:
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils
except ImportError:
    stats = None
if stats is not None and hasattr(stats, "initialize"):  # Airflow 3.3's task runner
    from airflow.sdk.configuration import conf
    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
    )
elif stats is not None:  # Airflow 3.2's task runner
    stats.Stats.initialize(factory=stats_utils.get_stats_factory(stats.Stats))

from airflow_provider_mps.core import metrics
metrics.count_images_requested(12, conn_id="mps_team_a", model="Hunyuan")
metrics.count_refused_by_budget(conn_id="mps_team_a", model=None, creates=3)
metrics.count_possible_duplicate(conn_id="mps_team_b", model="GEM")
metrics.count_images_requested(0, conn_id="mps_team_a", model="Hunyuan")
"""


@pytest.fixture
def statsd_listener():
    """A UDP socket on a free loopback port, standing in for the StatsD daemon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _emit(listener: socket.socket, **metrics_options: str) -> list[str]:
    """Run :data:`EMITTER` with ``[metrics]`` set from ``metrics_options``; return the provider's lines."""
    env = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    env.update({f"AIRFLOW__METRICS__{name.upper()}": value for name, value in metrics_options.items()})
    result = subprocess.run(
        [sys.executable, "-c", EMITTER], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # The process has exited: whatever it sent is already in the socket's buffer.
    listener.settimeout(0.5)
    lines: list[str] = []
    while True:
        try:
            packet = listener.recv(65535)
        except TimeoutError:
            break
        lines += packet.decode().splitlines()
    # Airflow may send metrics of its own (serializers loaded, ...): only the provider's are compared.
    return [line for line in lines if line.startswith("airflow.tencentcloud_mps.")]


#: What statsd receives with InfluxDB tags on: each counter by connection and model.
TAGGED_LINES = [
    "airflow.tencentcloud_mps.images_requested,conn_id=mps_team_a,model=Hunyuan:12|c",
    "airflow.tencentcloud_mps.creates_refused_by_budget,conn_id=mps_team_a,model=default:3|c",
    "airflow.tencentcloud_mps.possible_duplicates,conn_id=mps_team_b,model=GEM:1|c",
]
#: What plain statsd receives: the totals.
TOTAL_LINES = [
    "airflow.tencentcloud_mps.images_requested:12|c",
    "airflow.tencentcloud_mps.creates_refused_by_budget:3|c",
    "airflow.tencentcloud_mps.possible_duplicates:1|c",
]


@needs_statsd
@pytest.mark.parametrize(
    ("influxdb", "expected"),
    [
        pytest.param("True", TAGGED_LINES, id="tagged-by-connection-and-model"),
        pytest.param("False", TOTAL_LINES, id="plain-statsd-gets-the-totals"),
    ],
)
def test_the_counters_reach_statsd(statsd_listener, influxdb, expected):
    lines = _emit(statsd_listener, statsd_on="True", statsd_influxdb_enabled=influxdb)

    assert lines == expected


def test_with_metrics_off_nothing_is_sent(statsd_listener):
    assert _emit(statsd_listener, statsd_on="False") == []


def test_a_metric_that_cannot_be_sent_never_fails_the_create(monkeypatch, caplog):
    class BrokenStats:
        @staticmethod
        def incr(*args, **kwargs):
            raise OSError("the metrics backend is gone")

    monkeypatch.setattr(compat_sdk, "Stats", BrokenStats, raising=False)
    caplog.set_level(logging.WARNING, logger="airflow_provider_mps.core.metrics")

    metrics.count_possible_duplicate(conn_id="mps_default", model="Hunyuan")

    assert [r.getMessage() for r in caplog.records if r.name == "airflow_provider_mps.core.metrics"] == [
        "Could not emit the metric tencentcloud_mps.possible_duplicates "
        "(OSError: the metrics backend is gone)"
    ]


def test_the_metrics_go_through_the_stats_common_compat_resolves():
    # airflow.sdk.observability.stats from Airflow 3.2, airflow.stats before.
    assert compat_sdk.Stats.__module__.startswith(("airflow.sdk.", "airflow.stats", "airflow.observability"))


def test_every_counter_is_tagged_by_connection_and_model():
    assert (
        metrics.tags(conn_id="mps_default", model="Hunyuan"),
        metrics.tags(conn_id="mps_default", model=None),
    ) == ({"conn_id": "mps_default", "model": "Hunyuan"}, {"conn_id": "mps_default", "model": "default"})
