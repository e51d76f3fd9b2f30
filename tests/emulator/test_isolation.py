"""The emulator stands alone: no Airflow, no SDK, no provider runtime code; the plugin loads cheaply."""

from __future__ import annotations

import json
import subprocess
import sys

EMULATOR_MODULES = [
    "airflow_provider_mps.emulator.server",
    "airflow_provider_mps.emulator.responses",
    "airflow_provider_mps.emulator.models",
    "airflow_provider_mps.emulator.pytest_plugin",
]


def modules_loaded_by(*imports: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(imports)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_emulator_imports_neither_airflow_nor_the_sdk_nor_the_provider_runtime():
    loaded = modules_loaded_by(*EMULATOR_MODULES)

    provider = sorted(m for m in loaded if m.startswith("airflow_provider_mps"))
    assert [m for m in loaded if m.split(".")[0] in ("airflow", "tencentcloud")] == []
    assert provider == [
        "airflow_provider_mps",
        "airflow_provider_mps.emulator",
        "airflow_provider_mps.emulator.exceptions",
        "airflow_provider_mps.emulator.images",
        "airflow_provider_mps.emulator.knobs",
        "airflow_provider_mps.emulator.models",
        "airflow_provider_mps.emulator.pytest_plugin",
        "airflow_provider_mps.emulator.responses",
        "airflow_provider_mps.emulator.server",
        "airflow_provider_mps.emulator.signature",
        "airflow_provider_mps.emulator.validation",
    ]


def test_pytest_plugin_loads_without_the_server_stack():
    loaded = modules_loaded_by("airflow_provider_mps.emulator.pytest_plugin")

    assert [m for m in loaded if m.split(".")[0] in ("starlette", "uvicorn", "PIL", "airflow")] == []


PROBE_RUNTIME_IMPORTS = """
import importlib, json, pkgutil, sys

from airflow.exceptions import AirflowOptionalProviderFeatureException

def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name == "airflow_provider_mps.emulator":
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as error:
            # utils.openlineage needs the optional openlineage extra; without it, it is never loaded.
            if "openlineage" in (error.name or ""):
                continue
            raise
        except AirflowOptionalProviderFeatureException:
            # operators.review needs Airflow 3.1+ (HITL) and says so when imported on an older line.
            continue
        yield info.name
        if info.ispkg:
            yield from walk(module)

names = list(walk(importlib.import_module("airflow_provider_mps")))
emulator = sorted(m for m in sys.modules if m.startswith("airflow_provider_mps.emulator"))
print(json.dumps([len(names), emulator]))
"""


def test_provider_runtime_never_imports_the_emulator():
    out = subprocess.run(
        [sys.executable, "-c", PROBE_RUNTIME_IMPORTS], check=True, capture_output=True, text=True
    ).stdout

    imported_count, emulator_modules = json.loads(out.strip().splitlines()[-1])
    assert imported_count > 5
    assert emulator_modules == []
