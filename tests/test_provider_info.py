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

from airflow_provider_mps import SERVICE_QUOTA_PER_SECOND, __version__
from airflow_provider_mps.get_provider_info import get_provider_info
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS
from tests.conftest import fresh_interpreter_json

PACKAGE = "airflow-provider-tencentcloud-mps"
AIRFLOW_DIR = Path(airflow.__file__).parent
#: ``airflow providers widgets`` field types: the schema types from provider info (3.2+), the
#: hook's WTForms classes on Airflow 2.  (The connection form itself is proven per line in
#: ``tests/hooks/test_mps_connection_form.py``.)
EXPECTED_WIDGET_TYPES = (
    {
        "extra__tencentcloud_mps__region": ["string", "null"],
        "extra__tencentcloud_mps__endpoint": ["string", "null"],
        "extra__tencentcloud_mps__token": ["string", "null"],
        "extra__tencentcloud_mps__request_timeout": ["number", "null"],
        "extra__tencentcloud_mps__proxy": ["string", "null"],
        "extra__tencentcloud_mps__language": ["string", "null"],
    }
    if AIRFLOW_V_3_2_PLUS
    else {
        "extra__tencentcloud_mps__region": "StringField",
        "extra__tencentcloud_mps__endpoint": "StringField",
        "extra__tencentcloud_mps__token": "PasswordField",
        "extra__tencentcloud_mps__request_timeout": "IntegerField",
        "extra__tencentcloud_mps__proxy": "StringField",
        "extra__tencentcloud_mps__language": "StringField",
    }
)
#: Airflow 3.0 and 3.1 load a hook's form fields only when Flask-AppBuilder (WTForms) is installed,
#: for every provider; their API server's form service is proven in test_mps_connection_form.py.
HOOK_FORMS_NEED_FAB = AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_2_PLUS
NEEDS_FAB_REASON = (
    "Airflow 3.0 and 3.1 load no provider's hook form fields outside the UI without Flask-AppBuilder; "
    "the UI's form service is tested in tests/hooks/test_mps_connection_form.py."
)


def test_provider_info_validates_against_airflows_provider_info_schema():
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)

    assert (get_provider_info()["package-name"], get_provider_info()["versions"]) == (PACKAGE, [__version__])


#: Loads the provider's ``apache_airflow_provider`` entry point first, as Airflow's providers
#: manager and packaging tools do, then lets Airflow discover the provider.
ENTRY_POINT_FIRST = """
import json, sys
from importlib.metadata import entry_points
[entry_point] = [
    ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_mps.")
]
info = entry_point.load()()
roots = ("airflow", "airflow_provider_mps", "tencentcloud")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots)
from airflow.providers_manager import ProvidersManager
version = ProvidersManager().providers["airflow-provider-tencentcloud-mps"].version
print(json.dumps({
    "entry_point": entry_point.value,
    "keys": sorted(info),
    "connection_types": [(c["connection-type"], c["hook-class-name"]) for c in info["connection-types"]],
    "loaded": loaded,
    "airflow_sees_version": version,
}))
"""


def test_the_entry_point_loads_first_in_a_fresh_interpreter_without_importing_airflow():
    assert fresh_interpreter_json(ENTRY_POINT_FIRST) == {
        "entry_point": "airflow_provider_mps.get_provider_info:get_provider_info",
        "keys": [
            "config",
            "connection-types",
            "description",
            "extra-links",
            "hooks",
            "integrations",
            "name",
            "operators",
            "package-name",
            "sensors",
            "transfers",
            "triggers",
            "versions",
        ],
        "connection_types": [["tencentcloud_mps", "airflow_provider_mps.hooks.mps.MpsHook"]],
        "loaded": ["airflow_provider_mps", "airflow_provider_mps.get_provider_info"],
        "airflow_sees_version": __version__,
    }


def test_the_literal_metadata_agrees_with_the_packages_constants():
    info = get_provider_info()
    options = info["config"]["tencentcloud_mps"]["options"]
    quota = f"{SERVICE_QUOTA_PER_SECOND:g}"

    assert (info["versions"], options["quota_share"]["default"]) == ([__version__], quota)
    assert f"The service allows {quota} per action and account" in options["quota_share"]["description"]
    assert f"moving window of {quota} requests per second" in options["quota_storage_uri"]["description"]


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
        [line] = [line for line in stdout.splitlines() if line.startswith("[")][-1:]  # skip log lines
        output[name] = json.loads(line)
    return output


def test_connection_form_loads_without_importing_the_sdk(cli_output):
    # Airflow itself imports every hook module for the form; importing ours must not pull in the SDK.
    loaded = not HOOK_FORMS_NEED_FAB
    assert cli_output["form"] == [
        {
            "fields": sorted(EXPECTED_WIDGET_TYPES) if loaded else [],
            "behaviour": loaded,
            "hook": True,
            "sdk": [],
        }
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


@pytest.mark.skipif(HOOK_FORMS_NEED_FAB, reason=NEEDS_FAB_REASON)
def test_airflow_providers_behaviours_lists_the_connection_type(cli_output):
    assert {"field_behaviours": "tencentcloud_mps"} in cli_output["behaviours"]


@pytest.mark.skipif(HOOK_FORMS_NEED_FAB, reason=NEEDS_FAB_REASON)
def test_airflow_providers_widgets_lists_every_extra_field(cli_output):
    rows = {
        row["connection_parameter_name"]: row["field_type"]
        for row in cli_output["widgets"]
        if row["package_name"] == PACKAGE
    }

    assert rows == EXPECTED_WIDGET_TYPES


@pytest.fixture(scope="module")
def config_cli() -> dict[str, str]:
    """``airflow config`` output for the provider's section, run in parallel with the test Airflow home."""
    commands = {
        "list": ({}, ["config", "list", "--section", "tencentcloud_mps", "--include-descriptions"]),
        "default": ({}, ["config", "get-value", "tencentcloud_mps", "quota_share"]),
        "set": (
            {"AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE": "2.5"},
            ["config", "get-value", "tencentcloud_mps", "quota_share"],
        ),
    }
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (env, args) in commands.items()
    }
    output = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"airflow {' '.join(commands[name][1])} failed: {stderr}"
        output[name] = stdout
    return output


def test_airflow_config_list_shows_the_quota_share_option_and_its_description(config_cli):
    section = config_cli["list"][config_cli["list"].index("[tencentcloud_mps]") :]

    assert "# Requests per second one Airflow process (a task on a worker, a triggerer) may send" in section
    assert "20 / (workers x tasks running at once on each + triggerers)" in section
    assert "quota_share = " in section


def test_the_quota_share_defaults_to_the_whole_quota_and_reads_the_environment(config_cli):
    assert (config_cli["default"].splitlines()[-1], config_cli["set"].splitlines()[-1]) == ("20", "2.5")


def test_the_provider_declares_its_configuration_section():
    option = get_provider_info()["config"]["tencentcloud_mps"]["options"]["quota_share"]

    assert {key: value for key, value in option.items() if key != "description"} == {
        "version_added": "0.1.0",
        "type": "float",
        "example": "2.5",
        "default": "20",
    }
    assert option["description"].startswith("Requests per second one Airflow process")
