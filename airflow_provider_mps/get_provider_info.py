"""
Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Airflow loads this entry point before anything else of the provider, often while Airflow itself is
still being imported, so this module imports nothing and returns a literal, as the official
providers' ``get_provider_info.py`` do.  The connection form is declared here once;
:mod:`airflow_provider_mps.hooks._mps_connection_form` reads it from this dict for the hook.
``tests/test_provider_info.py`` checks the version and the quota against the package's constants.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-tencentcloud-mps",
        "name": "Tencent Cloud MPS",
        "description": (
            "`Tencent Cloud Media Processing Service (MPS) <https://cloud.tencent.com/product/mps>`__ AIGC "
            "image generation: create image tasks, wait for them (deferrable), and copy the generated images "
            "to any object storage.\n"
        ),
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "Tencent Cloud MPS",
                "external-doc-url": "https://cloud.tencent.com/document/product/862",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Tencent Cloud MPS", "python-modules": ["airflow_provider_mps.hooks.mps"]},
        ],
        "operators": [
            {
                "integration-name": "Tencent Cloud MPS",
                "python-modules": [
                    "airflow_provider_mps.operators.mps",
                    "airflow_provider_mps.operators.mps_batch",
                ],
            },
        ],
        "sensors": [
            {"integration-name": "Tencent Cloud MPS", "python-modules": ["airflow_provider_mps.sensors.mps"]},
        ],
        "triggers": [
            {
                "integration-name": "Tencent Cloud MPS",
                "python-modules": ["airflow_provider_mps.triggers.mps"],
            },
        ],
        "transfers": [
            {
                "source-integration-name": "Tencent Cloud MPS",
                "target-integration-name": "Common IO",
                "python-module": "airflow_provider_mps.transfers.mps_to_object_storage",
            }
        ],
        # conn-fields / ui-field-behaviour drive the form from Airflow 3.2.  Older lines' schemas
        # accept the keys and ignore them; there MpsHook.get_connection_form_widgets() and
        # get_ui_field_behaviour() build the same form.
        "connection-types": [
            {
                "connection-type": "tencentcloud_mps",
                "hook-class-name": "airflow_provider_mps.hooks.mps.MpsHook",
                "hook-name": "Tencent Cloud MPS",
                # Extras shown as form fields (stored in the connection's ``extra`` JSON under these names).
                "conn-fields": {
                    "region": {
                        "label": "Region",
                        "description": (
                            "Tencent Cloud region of the MPS API, e.g. ap-guangzhou (the default)."
                        ),
                        "schema": {
                            "type": ["string", "null"],
                            "default": "ap-guangzhou",
                            # Tencent Cloud region names: ap-guangzhou, na-siliconvalley, ap-shanghai-fsi.
                            "pattern": r"^[a-z]{2,}-[a-z]+(-[a-z0-9]+)*$",
                        },
                    },
                    "endpoint": {
                        "label": "Endpoint URL",
                        "description": (
                            "Full URL of the MPS API with scheme. Default https://mps.tencentcloudapi.com; "
                            "http://127.0.0.1:9100 for the local emulator."
                        ),
                        "schema": {"type": ["string", "null"], "format": "url"},
                    },
                    "token": {
                        "label": "Session token",
                        "description": (
                            "Token of temporary credentials (STS); leave empty for permanent API keys."
                        ),
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "request_timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Seconds one HTTP request to the API may take. Default 60.",
                        "schema": {"type": ["number", "null"], "default": 60, "minimum": 1},
                    },
                    "proxy": {
                        "label": "Proxy URL",
                        "description": "HTTP(S) proxy for API calls, e.g. http://proxy.example.com:3128.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "language": {
                        "label": "Error message language",
                        "description": "Language of the service's error messages: en-US (default) or zh-CN.",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "en-US",
                            "enum": ["en-US", "zh-CN"],
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host"],
                    "relabeling": {"login": "SecretId", "password": "SecretKey"},
                    "placeholders": {
                        "login": "AKID... (empty: use the Tencent Cloud credential chain)",
                        "password": "SecretKey of the API key",
                        "region": "ap-guangzhou",
                        "endpoint": "https://mps.tencentcloudapi.com",
                        "request_timeout": "60",
                        "proxy": "http://proxy.example.com:3128",
                        "language": "en-US",
                    },
                },
            }
        ],
        "extra-links": [
            "airflow_provider_mps.links.mps.MpsAigcImageLink",
            "airflow_provider_mps.links.mps.MpsConsoleTaskLink",
        ],
        # Read by utils.rate_limit.quota_share(), utils.shared_quota.quota_storage_uri() and
        # core.budget.image_budget(); `airflow config list` shows them.
        "config": {
            "tencentcloud_mps": {
                "description": (
                    "How the processes of this deployment share the MPS account's API quota, and the "
                    "image budget they spend from.\n"
                ),
                "options": {
                    "quota_share": {
                        "description": (
                            "Requests per second one Airflow process (a task on a worker, a triggerer) may "
                            "send to MPS, for each API action and account. The service allows 20 per action "
                            "and account whatever sends them, so give each process its share: 20 / (workers "
                            "x tasks running at once on each + triggerers). Set it per process type with "
                            "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE where workers and triggerers differ. "
                            "Every request of the process (creates, describes, waits, sensor pokes, trigger "
                            "polls) waits for its slot; a task's rate_limit never raises or lowers it.\n"
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "2.5",
                        "default": "20",
                    },
                    "quota_storage_uri": {
                        "description": (
                            "Shared quota mode: a storage URI of the `limits` library (install the "
                            "provider's shared-quota extra), such as the deployment's Redis, "
                            "redis://:password@redis-host:6379/0. When set, every process draws each request "
                            "from one account-wide moving window of 20 requests per second per action (less "
                            "a headroom for network jitter), so the quota holds whatever the number of "
                            "workers and triggerers, and quota_share becomes only a ceiling per process "
                            "(leave it unset). Set the same value in every component. Empty (the default) "
                            "means per-process shares. The password is never logged.\n"
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": "redis://127.0.0.1:6379/0",
                        "default": "",
                    },
                    "image_budget": {
                        "description": (
                            "The most images the creates of one Tencent Cloud account (SecretId) may ask "
                            "for in a moving time window, in the limits library's rate syntax: '<images> per "
                            "[<n>] <second|minute|hour|day|month|year>', such as 2000 per day. Counted "
                            "across every process in the store quota_storage_uri names, which must be set. "
                            "A create reserves its images before it is sent (a batch its whole count); one "
                            "the budget cannot cover sends nothing and fails, and Airflow's retries try "
                            "again. A connection's image_budget extra overrides it. Empty (the default) "
                            "means no budget.\n"
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "2000 per day",
                        "default": "",
                    },
                },
            }
        },
    }
