"""Provider metadata read by Airflow's ProvidersManager (placeholder; completed with the hook)."""

from __future__ import annotations

from typing import Any

from airflow_provider_mps import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-tencentcloud-mps",
        "name": "Tencent Cloud MPS",
        "description": "Tencent Cloud Media Processing Service (MPS) AIGC image generation.",
        "versions": [__version__],
    }
