"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_mps import SERVICE_QUOTA_PER_SECOND, __version__
from airflow_provider_mps.hooks._mps_connection_form import CONN_FIELDS, CONNECTION_TYPE, UI_FIELD_BEHAVIOUR

INTEGRATION_NAME = "Tencent Cloud MPS"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-tencentcloud-mps",
        "name": "Tencent Cloud MPS",
        "description": (
            "`Tencent Cloud Media Processing Service (MPS) <https://cloud.tencent.com/product/mps>`__ "
            "AIGC image generation: create image tasks, wait for them (deferrable), and copy the "
            "generated images to any object storage.\n"
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION_NAME,
                "external-doc-url": "https://cloud.tencent.com/document/product/862",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": INTEGRATION_NAME, "python-modules": ["airflow_provider_mps.hooks.mps"]},
        ],
        "operators": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_provider_mps.operators.mps",
                    "airflow_provider_mps.operators.mps_batch",
                ],
            },
        ],
        "sensors": [
            {"integration-name": INTEGRATION_NAME, "python-modules": ["airflow_provider_mps.sensors.mps"]},
        ],
        "triggers": [
            {"integration-name": INTEGRATION_NAME, "python-modules": ["airflow_provider_mps.triggers.mps"]},
        ],
        "transfers": [
            {
                "source-integration-name": INTEGRATION_NAME,
                "target-integration-name": "Common IO",
                "python-module": "airflow_provider_mps.transfers.mps_to_object_storage",
            }
        ],
        # conn-fields / ui-field-behaviour drive the form from Airflow 3.2.  Older lines' schemas
        # accept the keys and ignore them; there MpsHook.get_connection_form_widgets() and
        # get_ui_field_behaviour() build the same form.
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": "airflow_provider_mps.hooks.mps.MpsHook",
                "hook-name": "Tencent Cloud MPS",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": [
            "airflow_provider_mps.links.mps.MpsAigcImageLink",
            "airflow_provider_mps.links.mps.MpsConsoleTaskLink",
        ],
        # Read by utils.rate_limit.quota_share() and utils.shared_quota.quota_storage_uri();
        # `airflow config list` shows them.
        "config": {
            "tencentcloud_mps": {
                "description": "How the processes of this deployment share the MPS account's API quota.\n",
                "options": {
                    "quota_share": {
                        "description": (
                            "Requests per second one Airflow process (a task on a worker, a triggerer) may "
                            "send to MPS, for each API action and account. The service allows "
                            f"{SERVICE_QUOTA_PER_SECOND:g} per action and account whatever sends them, so "
                            "give each process its share: "
                            f"{SERVICE_QUOTA_PER_SECOND:g} / (workers x tasks running at once on each + "
                            "triggerers). Set it per process type with "
                            "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE where workers and triggerers differ. "
                            "Every request of the process (creates, describes, waits, sensor pokes, "
                            "trigger polls) waits for its slot; a task's rate_limit never raises or "
                            "lowers it.\n"
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "2.5",
                        "default": f"{SERVICE_QUOTA_PER_SECOND:g}",
                    },
                    "quota_storage_uri": {
                        "description": (
                            "Shared quota mode: a storage URI of the `limits` library (install the "
                            "provider's shared-quota extra), such as the deployment's Redis, "
                            "redis://:password@redis-host:6379/0. When set, every process draws each "
                            "request from one account-wide moving window of "
                            f"{SERVICE_QUOTA_PER_SECOND:g} requests per second per action (less a "
                            "headroom for network jitter), so the quota holds whatever the number of "
                            "workers and triggerers, and quota_share becomes only a ceiling per "
                            "process (leave it unset). Set the same value in every component. "
                            "Empty (the default) means per-process shares. The password is never "
                            "logged.\n"
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": "redis://127.0.0.1:6379/0",
                        "default": "",
                    },
                },
            }
        },
    }
