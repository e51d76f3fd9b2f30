"""
Which Airflow line is installed, decided once for the whole provider.

Importing this module refuses an Airflow older than the provider's floor, naming both versions;
every Airflow-facing subpackage (hooks, operators, sensors, triggers, transfers, links) imports it
first, so the emulator alone stays free of Airflow.

The same flags as ``airflow.providers.common.compat.version_compat``, kept here as the official
providers do (each copies this small module rather than import another provider's). Behaviour that
differs by Airflow line is decided by these flags, named after the feature where it is used.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """Return the installed Airflow's ``(major, minor, micro)``, ignoring pre-release tags."""
    from airflow import __version__
    from packaging.version import Version

    airflow_version = Version(__version__)
    return airflow_version.major, airflow_version.minor, airflow_version.micro


def _check_airflow_version() -> None:
    """Fail at import, naming both versions, on an Airflow older than the provider's floor."""
    from airflow import __version__ as airflow_version

    from airflow_provider_mps import MIN_AIRFLOW_VERSION, __version__

    if get_base_airflow_version_tuple() < tuple(int(part) for part in MIN_AIRFLOW_VERSION.split(".")):
        raise RuntimeError(
            f"The package airflow-provider-tencentcloud-mps:{__version__} needs Apache Airflow "
            f"{MIN_AIRFLOW_VERSION}+; this environment has Apache Airflow {airflow_version}."
        )


_check_airflow_version()

AIRFLOW_V_3_0_PLUS: bool = get_base_airflow_version_tuple() >= (3, 0, 0)
AIRFLOW_V_3_1_PLUS: bool = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS: bool = get_base_airflow_version_tuple() >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "get_base_airflow_version_tuple",
]
