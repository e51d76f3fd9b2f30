"""Apache Airflow provider for Tencent Cloud MPS AIGC image generation."""

from __future__ import annotations

__version__ = "0.1.0"

#: The oldest Apache Airflow this provider supports (the floor in ``pyproject.toml``).
MIN_AIRFLOW_VERSION = "2.11.0"


def _check_airflow_version() -> None:
    """Fail at import, naming both versions, on an Airflow older than :data:`MIN_AIRFLOW_VERSION`."""
    from airflow import __version__ as airflow_version
    from packaging.version import Version

    if Version(Version(airflow_version).base_version) < Version(MIN_AIRFLOW_VERSION):
        raise RuntimeError(
            f"The package airflow-provider-tencentcloud-mps:{__version__} needs Apache Airflow "
            f"{MIN_AIRFLOW_VERSION}+; this environment has Apache Airflow {airflow_version}."
        )


_check_airflow_version()

#: The connection every MPS hook, operator, sensor and trigger uses unless told otherwise.
DEFAULT_CONN_ID = "tencentcloud_mps_default"

#: The service's quota, per account and action: 20 requests per second (the default rate limit).
SERVICE_QUOTA_PER_SECOND = 20.0

#: XCom key under which the operators and the sensor push the list of generated image URLs.
IMAGE_URLS_XCOM_KEY = "image_urls"
