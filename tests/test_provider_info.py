"""Provider registration: the metadata dict, Airflow's schemas, ProvidersManager and the CLI."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_mps import __version__
from airflow_provider_mps.get_provider_info import get_provider_info

PACKAGE = "airflow-provider-tencentcloud-mps"
AIRFLOW_DIR = Path(airflow.__file__).parent
EXPECTED_WIDGETS = {
    "extra__tencentcloud_mps__region": (["string", "null"], False),
    "extra__tencentcloud_mps__endpoint": (["string", "null"], False),
    "extra__tencentcloud_mps__token": (["string", "null"], True),
    "extra__tencentcloud_mps__request_timeout": (["number", "null"], False),
    "extra__tencentcloud_mps__proxy": (["string", "null"], False),
    "extra__tencentcloud_mps__language": (["string", "null"], False),
}


def test_provider_info_validates_against_airflows_provider_info_schema():
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)

    assert (get_provider_info()["package-name"], get_provider_info()["versions"]) == (PACKAGE, [__version__])


def test_connection_type_validates_against_the_provider_yaml_schema_for_conn_fields():
    schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())

    jsonschema.validate(get_provider_info()["connection-types"], schema["properties"]["connection-types"])


def test_ui_field_behaviour_validates_against_airflows_field_behaviour_schema():
    schema = json.loads((AIRFLOW_DIR / "customized_form_field_behaviours.schema.json").read_text())
    behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]

    jsonschema.validate(
        {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        },
        schema,
    )


def test_every_declared_module_and_class_imports():
    info = get_provider_info()
    modules = [
        module
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in info[section]
        for module in entry["python-modules"]
    ] + [entry["python-module"] for entry in info["transfers"]]
    classes = info["extra-links"] + [entry["hook-class-name"] for entry in info["connection-types"]]

    for module in modules:
        importlib.import_module(module)
    for path in classes:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), path


def test_providers_manager_registers_the_connection_form_fields():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()

    assert manager.providers[PACKAGE].version == __version__
    widgets = {
        name: (widget.field["schema"]["type"], widget.is_sensitive)
        for name, widget in manager.connection_form_widgets.items()
        if name.startswith("extra__tencentcloud_mps__")
    }
    assert widgets == EXPECTED_WIDGETS
    assert manager.field_behaviours["tencentcloud_mps"] == {
        "hidden_fields": ["schema", "port", "host"],
        "relabeling": {"login": "SecretId", "password": "SecretKey"},
        "placeholders": {
            "login": "AKID... (empty: use the Tencent Cloud credential chain)",
            "password": "SecretKey of the API key",
            "extra__tencentcloud_mps__region": "ap-guangzhou",
            "extra__tencentcloud_mps__endpoint": "https://mps.tencentcloudapi.com",
            "extra__tencentcloud_mps__request_timeout": "60",
            "extra__tencentcloud_mps__proxy": "http://proxy.example.com:3128",
            "extra__tencentcloud_mps__language": "en-US",
        },
    }
    hook = ProvidersManagerTaskRuntime().hooks["tencentcloud_mps"]
    assert (hook.hook_class_name, hook.connection_id_attribute_name, hook.hook_name) == (
        "airflow_provider_mps.hooks.mps.MpsHook",
        "mps_conn_id",
        "Tencent Cloud MPS",
    )


FORM_WITHOUT_SDK_IMPORT = """
import json, sys
from airflow.providers_manager import ProvidersManager
manager = ProvidersManager()
fields = sorted(k for k in manager.connection_form_widgets if k.startswith("extra__tencentcloud_mps__"))
behaviour = "tencentcloud_mps" in manager.field_behaviours
hook_imported = "airflow_provider_mps.hooks.mps" in sys.modules
sdk = sorted(m for m in sys.modules if m.startswith("tencentcloud"))
print(json.dumps([{"fields": fields, "behaviour": behaviour, "hook": hook_imported, "sdk": sdk}]))
"""

CLI_COMMANDS = {
    "form": ["-c", FORM_WITHOUT_SDK_IMPORT],
    "list": ["-m", "airflow", "providers", "list", "-o", "json"],
    "get": ["-m", "airflow", "providers", "get", PACKAGE, "-o", "json"],
    "hooks": ["-m", "airflow", "providers", "hooks", "-o", "json"],
    "behaviours": ["-m", "airflow", "providers", "behaviours", "-o", "json"],
    "widgets": ["-m", "airflow", "providers", "widgets", "-o", "json"],
}


@pytest.fixture(scope="module")
def cli_output() -> dict[str, list[dict[str, object]]]:
    """
    The ``airflow providers ...`` commands (and a fresh interpreter reading the connection form),
    run in parallel as subprocesses with the test Airflow home.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    running = {
        name: subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in CLI_COMMANDS.items()
    }
    output = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"{' '.join(CLI_COMMANDS[name])} failed: {stderr}"
        [line] = [line for line in stdout.splitlines() if line.startswith("[{")]  # skip log lines
        output[name] = json.loads(line)
    return output


def test_connection_form_loads_without_importing_the_sdk(cli_output):
    # Airflow itself imports every hook module for the form; importing ours must not pull in the SDK.
    assert cli_output["form"] == [
        {"fields": sorted(EXPECTED_WIDGETS), "behaviour": True, "hook": True, "sdk": []}
    ]


def test_airflow_providers_list_shows_the_provider(cli_output):
    [row] = [row for row in cli_output["list"] if row["package_name"] == PACKAGE]

    assert row["version"] == __version__


def test_airflow_providers_get_shows_the_provider(cli_output):
    assert cli_output["get"] == [{"Provider": PACKAGE, "Version": __version__}]


def test_airflow_providers_hooks_shows_the_mps_hook(cli_output):
    assert [row for row in cli_output["hooks"] if row["connection_type"] == "tencentcloud_mps"] == [
        {
            "connection_type": "tencentcloud_mps",
            "class": "airflow_provider_mps.hooks.mps.MpsHook",
            "conn_id_attribute_name": "mps_conn_id",
            "package_name": PACKAGE,
            "hook_name": "Tencent Cloud MPS",
        }
    ]


def test_airflow_providers_behaviours_lists_the_connection_type(cli_output):
    assert {"field_behaviours": "tencentcloud_mps"} in cli_output["behaviours"]


def test_airflow_providers_widgets_lists_every_extra_field(cli_output):
    rows = {
        row["connection_parameter_name"]: row["field_type"]
        for row in cli_output["widgets"]
        if row["package_name"] == PACKAGE
    }

    assert rows == {name: field_type for name, (field_type, _) in EXPECTED_WIDGETS.items()}
