"""
The ``tencentcloud_mps`` connection form, declared once for every Airflow line.

The form is declared once, in provider info
(:func:`~airflow_provider_mps.get_provider_info.get_provider_info`, a literal that imports
nothing), and read from there.  Airflow 3.2+ reads ``conn-fields`` and ``ui-field-behaviour``
from provider info without importing the hook.  Airflow 2.11 to 3.1 ask the hook instead:
:meth:`MpsHook.get_connection_form_widgets` builds WTForms fields from the same ``CONN_FIELDS``
(:func:`connection_form_widgets`), and :meth:`MpsHook.get_ui_field_behaviour` returns the same
behaviour in the classic shape (:func:`classic_ui_field_behaviour`).  The hook module imports this
one at DAG parse, so it stays free of heavy imports: WTForms and Flask-AppBuilder are imported only
when a form is built.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.get_provider_info import get_provider_info

#: The connection type, its form fields and their behaviour, as provider info declares them.
_CONNECTION: dict[str, Any] = get_provider_info()["connection-types"][0]

CONNECTION_TYPE: str = _CONNECTION["connection-type"]

#: Extras shown as form fields (stored in the connection's ``extra`` JSON under these names).
CONN_FIELDS: dict[str, dict[str, Any]] = _CONNECTION["conn-fields"]

#: Tencent Cloud region names: ``ap-guangzhou``, ``na-siliconvalley``, ``ap-shanghai-fsi``.
REGION_REGEX: str = CONN_FIELDS["region"]["schema"]["pattern"]

#: ``ui-field-behaviour`` as provider info declares it.
UI_FIELD_BEHAVIOUR: dict[str, Any] = _CONNECTION["ui-field-behaviour"]
HIDDEN_FIELDS: list[str] = UI_FIELD_BEHAVIOUR["hidden-fields"]
RELABELING: dict[str, str] = UI_FIELD_BEHAVIOUR["relabeling"]
PLACEHOLDERS: dict[str, str] = UI_FIELD_BEHAVIOUR["placeholders"]


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
