"""
``bench.parse_vs_dbt_cloud`` without the dbt Cloud provider: its dbt Cloud rows are skipped, with the reason.

The operator is hidden from the benchmark's process: ``sys.modules`` holds None for the provider's
``operators`` package, so importing the operator fails with the ImportError of a missing module (the
whole ``airflow.providers.dbt`` cannot be hidden that way while the distribution is installed:
Airflow's configuration imports its provider info at start).  The run with it is
``test_bench_smoke.py``'s.  No figure is asserted: a tiny run's are noise.
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.bench.test_bench_smoke import DBT_CLOUD_RATIOS, EXPECTED_RATIOS, RATIO_LINE, run_bench

HIDDEN = """
import sys
sys.modules["airflow.providers.dbt.cloud.operators"] = None
from bench.parse_vs_dbt_cloud import main
sys.exit(main(["--tiny"]))
"""


@pytest.mark.timeout(600)
def test_without_dbt_cloud_the_parse_benchmark_skips_its_dbt_cloud_rows_and_says_why():
    completed = run_bench([sys.executable, "-c", HIDDEN], 540)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert re.search(
        r"^NOTE parse_vs_dbt_cloud: dbt Cloud rows skipped: apache-airflow-providers-dbt-cloud is not "
        r"importable \(.+\); pip install -e '\.\[bench\]'\.$",
        completed.stdout,
        re.MULTILINE,
    ), completed.stdout[-3000:]
    printed = {key for name, key in RATIO_LINE.findall(completed.stdout) if name == "parse_vs_dbt_cloud"}
    assert printed.isdisjoint(DBT_CLOUD_RATIOS)
    assert set(EXPECTED_RATIOS["parse_vs_dbt_cloud"]) <= printed
    assert "RAW parse_vs_dbt_cloud.breakdown.resumable_job_mixin_us = " in completed.stdout
