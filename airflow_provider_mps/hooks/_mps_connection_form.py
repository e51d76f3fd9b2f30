"""
The ``tencentcloud_mps`` connection form, declared once for every Airflow line.

Airflow 3.2+ reads ``conn-fields`` and ``ui-field-behaviour`` from provider info without
importing the hook.  Airflow 2.11 to 3.1 ask the hook instead:
:meth:`MpsHook.get_connection_form_widgets` builds WTForms fields from the same ``CONN_FIELDS``
(:func:`connection_form_widgets`), and :meth:`MpsHook.get_ui_field_behaviour` returns the same
behaviour in the classic shape (:func:`classic_ui_field_behaviour`).  This module is imported by
``get_provider_info`` at every Airflow start, so it stays free of heavy imports: WTForms and
Flask-AppBuilder are imported only when a form is built.
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


def connection_form_widgets() -> dict[str, Any]:
    """
    Return ``CONN_FIELDS`` as the WTForms fields ``BaseHook.get_connection_form_widgets`` returns.

    Airflow 2.11 renders them in its Flask-AppBuilder form; the UIs of Airflow 3.0 and 3.1 turn
    them into form fields by swapping WTForms' classes for stand-ins while they call this, so the
    names are imported here, at call time, never at module import.  A password ``format`` gives a
    ``PasswordField``, a number type an ``IntegerField`` (the classic form has no float field;
    whole seconds are stored), anything else a ``StringField``; ``enum`` and ``minimum`` become
    validators.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import NumberRange, Optional, any_of

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        validators: list[Any] = [Optional()]
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
        if "minimum" in schema:
            validators.append(NumberRange(min=schema["minimum"]))
        options = {"description": spec["description"], "default": schema.get("default")}
        if schema.get("format") == "password":
            widgets[name] = PasswordField(
                spec["label"], validators=validators, widget=BS3PasswordFieldWidget(), **options
            )
        elif "number" in schema["type"] or "integer" in schema["type"]:
            widgets[name] = IntegerField(
                spec["label"], validators=validators, widget=BS3TextFieldWidget(), **options
            )
        else:
            widgets[name] = StringField(
                spec["label"], validators=validators, widget=BS3TextFieldWidget(), **options
            )
    return widgets
