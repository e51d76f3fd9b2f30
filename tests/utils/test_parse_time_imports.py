from __future__ import annotations

import ast
import subprocess
import sys

MODULES = [
    "airflow_provider_mps.links.mps",
    "airflow_provider_mps.operators.mps",
    "airflow_provider_mps.operators.mps_batch",
    "airflow_provider_mps.sensors.mps",
    "airflow_provider_mps.transfers.mps_to_object_storage",
    "airflow_provider_mps.triggers.mps",
    "airflow_provider_mps.utils.rate_limit",
]


def _imported_after(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_dag_parsing_imports_of_the_provider_do_not_load_the_tencentcloud_sdk():
    loaded = _imported_after("".join(f"import {name}\n" for name in MODULES))

    # The provider's modules prove the imports ran; "tencentcloud" must stay out until a task runs.
    assert set(MODULES) <= set(loaded)
    assert [name for name in loaded if name.split(".")[0] == "tencentcloud"] == []


def test_a_dag_file_of_create_operators_loads_only_what_parsing_needs():
    loaded = set(
        _imported_after("from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator")
    )

    # Loaded when a task runs or the batch operator is used, never per parse.
    for deferred in (
        "airflow_provider_mps.hooks.mps",
        "airflow_provider_mps.triggers.mps",
        "airflow_provider_mps.operators.mps_batch",
        "airflow_provider_mps.operators._mps_batch_submit",
        "airflow_provider_mps.operators._reattach",
        "tencentcloud",
    ):
        assert deferred not in loaded, deferred
    assert "airflow_provider_mps.validation" in loaded  # literal arguments are checked at parse time
    assert "airflow_provider_mps.links.mps" in loaded  # extra links are declared the ordinary way


def test_a_dag_file_with_the_batch_operator_does_not_load_the_submission_machinery():
    loaded = set(
        _imported_after(
            "from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator"
        )
    )

    for deferred in (
        "airflow_provider_mps.hooks.mps",
        "airflow_provider_mps.triggers.mps",
        "airflow_provider_mps.operators._mps_batch_submit",
        "airflow_provider_mps.utils.rate_limit",
        "tencentcloud",
    ):
        assert deferred not in loaded, deferred


def test_a_dag_file_with_the_sensor_does_not_load_the_trigger_machinery():
    loaded = set(_imported_after("from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor"))
    # What Airflow's own base sensor loads on this line (Airflow 2.11 and 3.1 load airflow.triggers.base).
    airflow_own = set(_imported_after("from airflow.providers.common.compat.sdk import BaseSensorOperator"))

    # airflow.triggers.base alone costs ~5 ms; the sensor needs it only to defer.
    for deferred in (
        "airflow.triggers.base",
        "airflow_provider_mps.triggers.mps",
        "airflow_provider_mps.hooks.mps",
        "tencentcloud",
    ):
        assert deferred not in loaded - airflow_own, deferred
    assert "airflow_provider_mps.sensors.mps" in loaded
