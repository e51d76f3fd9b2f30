from __future__ import annotations

import subprocess
import sys

MODULES = [
    "airflow_provider_mps.links.mps",
    "airflow_provider_mps.sensors.mps",
    "airflow_provider_mps.transfers.mps_to_object_storage",
    "airflow_provider_mps.triggers.mps",
    "airflow_provider_mps.utils.rate_limit",
]


def test_dag_parsing_imports_of_waiting_modules_do_not_load_the_tencentcloud_sdk():
    code = (
        f"import sys\nfor name in {MODULES!r}:\n    __import__(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tencentcloud', 'airflow'}))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # "airflow" proves the imports ran; "tencentcloud" must stay out until a task runs.
    assert result.stdout.strip().splitlines()[-1] == "['airflow']"
