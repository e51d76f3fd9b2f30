"""
The benchmarks still run: every script of ``bench/`` on a tiny size, through ``bench.run_all``.

No figure is asserted, not even its sign or format (figures belong to ``make bench``; a tiny run's
are noise): only that each script completes, prints its ratio lines and that the results file gets
them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

#: The ratio lines each benchmark must print.
EXPECTED_RATIOS = {
    "submission": [
        "batch_execute_over_quota_bound",
        "batch_run_over_quota_bound",
        "mapped_run_over_quota_bound",
        "mapped_create_span_over_quota_bound",
    ],
    "parse_cost": [
        "mps_over_bash",
        "mps_over_empty",
        "mps_over_bash_per_operator",
        "mps_over_bash_with_serialization",
        "mps_batch_over_bash",
    ],
    # Its rows against dbt Cloud's operator are printed only where that provider is installed:
    # DBT_CLOUD_RATIOS below, and tests/bench/test_parse_vs_dbt_cloud.py for the run without it.
    "parse_vs_dbt_cloud": ["warm_mps_over_bash", "fresh_mps_over_bash"],
    "call_overhead": ["hook_over_raw_sync", "hook_over_raw_async"],
    "waiting": [
        "single.latency_max_over_poll_interval_plus_1s",
        "single.describe_peak_1s_over_quota",
        "single.describe_rate_over_quota",
        "batch.latency_max_over_poll_interval_plus_1s",
        "batch.describe_peak_1s_over_quota",
        "batch.describe_rate_over_quota",
    ],
}
#: bench.parse_vs_dbt_cloud's rows against the dbt Cloud provider (the `bench` extra, make bench).
DBT_CLOUD_DISTRIBUTION = "apache-airflow-providers-dbt-cloud"
DBT_CLOUD_RATIOS = [
    "warm_mps_over_dbt_cloud",
    "fresh_mps_over_dbt_cloud",
    "fresh_dag_processor_mps_over_dbt_cloud",
    "fresh_preloaded_mps_over_dbt_cloud",
    "import_mps_over_dbt_cloud",
    "warm_dbt_cloud_over_bash",
    "fresh_dbt_cloud_over_bash",
]
#: A ratio line, whatever its value: a tiny run's figures are noise (a marginal cost can come out
#: negative), so the smoke test checks that each line is printed, never what it says.
RATIO_LINE = re.compile(r"^RATIO (\w+)\.([\w.]+) = \S+", re.MULTILINE)


def run_bench(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``args`` from the repository, without the session's Airflow settings (a benchmark sets its own)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return subprocess.run(
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    results.write_text("# Benchmark results\n\nKept by hand.\n")
    completed = run_bench([sys.executable, "-m", "bench.run_all", "--tiny", "--results", str(results)], 600)
    return completed, results


@pytest.mark.timeout(660)
def test_every_benchmark_completes_on_a_tiny_size(tiny_run):
    completed, _ = tiny_run

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.mark.parametrize("benchmark", sorted(EXPECTED_RATIOS))
def test_each_benchmark_prints_its_ratio_lines_and_the_machine(tiny_run, benchmark):
    completed, _ = tiny_run

    printed = set(RATIO_LINE.findall(completed.stdout))
    assert {(benchmark, key) for key in EXPECTED_RATIOS[benchmark]} <= printed
    section = completed.stdout.split(f"===== {benchmark}:", 1)[1]
    for item in ("cpu", "cores", "python", "airflow", "tencentcloud-sdk-python-mps"):
        assert f"\nmachine.{item}: " in section


def test_the_results_file_gets_every_ratio_and_keeps_what_was_written_by_hand(tiny_run):
    _, results = tiny_run

    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nKept by hand.\n")
    for benchmark, keys in EXPECTED_RATIOS.items():
        assert f"### {benchmark}" in text
        for key in keys:
            assert f"| `{key}` | **" in text
    assert "Produced by `.venv/bin/python -m bench.run_all --tiny --results " in text


def test_parse_vs_dbt_cloud_prints_the_dbt_cloud_rows_where_the_provider_is_installed(tiny_run):
    try:
        metadata.version(DBT_CLOUD_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.skip(
            f"{DBT_CLOUD_DISTRIBUTION} is not installed (pip install -e '.[bench]', as make bench does): "
            "the benchmark skips its dbt Cloud rows, tests/bench/test_parse_vs_dbt_cloud.py checks that"
        )
    completed, results = tiny_run

    printed = set(RATIO_LINE.findall(completed.stdout))
    assert {("parse_vs_dbt_cloud", key) for key in DBT_CLOUD_RATIOS} <= printed
    text = results.read_text()
    for key in DBT_CLOUD_RATIOS:
        assert f"| `{key}` | **" in text
