"""Apache Airflow provider for Tencent Cloud MPS AIGC image generation."""

from __future__ import annotations

__version__ = "0.1.0"

#: The oldest Apache Airflow this provider supports (the floor in ``pyproject.toml``); checked by
#: :mod:`airflow_provider_mps.version_compat`, which every Airflow-facing subpackage imports.
MIN_AIRFLOW_VERSION = "2.11.0"

#: The connection every MPS hook, operator, sensor and trigger uses unless told otherwise.
DEFAULT_CONN_ID = "tencentcloud_mps_default"

#: The service's quota, per account and action: 20 requests per second (the default rate limit).
SERVICE_QUOTA_PER_SECOND = 20.0

#: The provider's section of Airflow's configuration (declared in ``get_provider_info()``).
CONFIG_SECTION = "tencentcloud_mps"

#: XCom key under which the operators and the sensor push the list of generated image URLs.
IMAGE_URLS_XCOM_KEY = "image_urls"
