"""
The ``tencentcloud_mps`` connection form, declared once.

Airflow 3.2+ reads ``conn-fields`` and ``ui-field-behaviour`` from provider info without
importing the hook; :meth:`MpsHook.get_ui_field_behaviour` returns the same behaviour in the
classic shape.  This module is imported by ``get_provider_info`` at every Airflow start, so it
stays free of heavy imports.
"""

from __future__ import annotations

from typing import Any

CONNECTION_TYPE = "tencentcloud_mps"

#: Tencent Cloud region names: ``ap-guangzhou``, ``na-siliconvalley``, ``ap-shanghai-fsi``.
REGION_REGEX = r"^[a-z]{2,}-[a-z]+(-[a-z0-9]+)*$"

#: Extras shown as form fields (stored in the connection's ``extra`` JSON under these names).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "region": {
        "label": "Region",
        "description": "Tencent Cloud region of the MPS API, e.g. ap-guangzhou (the default).",
        "schema": {
            "type": ["string", "null"],
            "default": "ap-guangzhou",
            "pattern": REGION_REGEX,
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
        "description": "Token of temporary credentials (STS); leave empty for permanent API keys.",
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
        "schema": {"type": ["string", "null"], "default": "en-US", "enum": ["en-US", "zh-CN"]},
    },
}

HIDDEN_FIELDS: list[str] = ["schema", "port", "host"]
RELABELING: dict[str, str] = {"login": "SecretId", "password": "SecretKey"}
PLACEHOLDERS: dict[str, str] = {
    "login": "AKID... (empty: use the Tencent Cloud credential chain)",
    "password": "SecretKey of the API key",
    "region": "ap-guangzhou",
    "endpoint": "https://mps.tencentcloudapi.com",
    "request_timeout": "60",
    "proxy": "http://proxy.example.com:3128",
    "language": "en-US",
}

#: ``ui-field-behaviour`` as provider info declares it.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": HIDDEN_FIELDS,
    "relabeling": RELABELING,
    "placeholders": PLACEHOLDERS,
}


def classic_ui_field_behaviour() -> dict[str, Any]:
    """Return the field behaviour in the shape ``BaseHook.get_ui_field_behaviour`` returns."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }
