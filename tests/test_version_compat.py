"""The provider's Airflow floor: refused at import with both versions named; the flags match the install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from packaging.version import Version

from airflow_provider_mps import MIN_AIRFLOW_VERSION, __version__
from airflow_provider_mps.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)

_IMPORT_ON_AN_OLD_AIRFLOW = textwrap.dedent(
    """
    import sys

    import airflow

    airflow.__version__ = {version!r}
    # Starting Airflow may already have loaded the provider (its provider info); import it afresh.
    for name in [name for name in sys.modules if name.startswith("airflow_provider_mps")]:
        del sys.modules[name]
    try:
        import airflow_provider_mps.{subpackage}
    except RuntimeError as error:
        print(error)
    else:
        print("imported")
    """
)


@pytest.mark.parametrize("subpackage", ["hooks", "operators", "sensors", "triggers", "transfers", "links"])
@pytest.mark.parametrize("old_version", ["2.10.5"])
def test_importing_the_provider_on_an_older_airflow_names_both_versions(subpackage, old_version):
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ON_AN_OLD_AIRFLOW.format(version=old_version, subpackage=subpackage)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.splitlines()[-1] == (
        f"The package airflow-provider-tencentcloud-mps:{__version__} needs Apache Airflow "
        f"{MIN_AIRFLOW_VERSION}+; this environment has Apache Airflow {old_version}."
    )


def test_the_floor_itself_imports():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORT_ON_AN_OLD_AIRFLOW.format(version=MIN_AIRFLOW_VERSION, subpackage="hooks"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.splitlines()[-1] == "imported"


def test_the_line_flags_match_the_installed_airflow():
    from airflow import __version__ as airflow_version

    installed = Version(Version(airflow_version).base_version)
    assert (
        installed >= Version("3.0"),
        installed >= Version("3.1"),
        installed >= Version("3.2"),
        installed >= Version("3.3"),
    ) == (AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS)


def test_the_floor_matches_the_declared_dependency():
    from importlib.metadata import requires

    declared = [
        req for req in requires("airflow-provider-tencentcloud-mps") or [] if req.startswith("apache-airflow")
    ]
    assert f"apache-airflow<4,>={MIN_AIRFLOW_VERSION}" in [req.replace(" ", "") for req in declared]
