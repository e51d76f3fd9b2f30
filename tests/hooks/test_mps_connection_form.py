"""
The ``tencentcloud_mps`` connection form shows the MPS fields on every Airflow line.

* 2.11: the hook's WTForms fields and field behaviour, in the webserver's Flask-AppBuilder form.
* 3.0 and 3.1: the same hook methods, as the API server's form service turns them into form fields.
* 3.2+: ``conn-fields`` and ``ui-field-behaviour`` from provider info; the hook is not asked.

Each line is proven by the test that runs on it; the others skip with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS
from tests.conftest import fresh_interpreter_json

CONN_TYPE = "tencentcloud_mps"
PACKAGE = "airflow-provider-tencentcloud-mps"

#: ``MpsHook.get_ui_field_behaviour()``: the extras' placeholders under the extras' own names.
HOOK_BEHAVIOUR = {
    "hidden_fields": ["schema", "port", "host"],
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
}
#: ``ProvidersManager().field_behaviours["tencentcloud_mps"]`` on every line that loads it: the
#: same, with each extra's placeholder under its form field ``extra__tencentcloud_mps__<name>``.
EXPECTED_BEHAVIOUR = {
    **HOOK_BEHAVIOUR,
    "placeholders": {
        name if name in ("login", "password") else f"extra__tencentcloud_mps__{name}": placeholder
        for name, placeholder in HOOK_BEHAVIOUR["placeholders"].items()
    },
}

#: Each extra field's label and description, the same on every line.
LABELS = {
    "region": ("Region", "Tencent Cloud region of the MPS API, e.g. ap-guangzhou (the default)."),
    "endpoint": (
        "Endpoint URL",
        "Full URL of the MPS API with scheme. Default https://mps.tencentcloudapi.com; "
        "http://127.0.0.1:9100 for the local emulator.",
    ),
    "token": ("Session token", "Token of temporary credentials (STS); leave empty for permanent API keys."),
    "request_timeout": (
        "Request timeout (seconds)",
        "Seconds one HTTP request to the API may take. Default 60.",
    ),
    "proxy": ("Proxy URL", "HTTP(S) proxy for API calls, e.g. http://proxy.example.com:3128."),
    "language": (
        "Error message language",
        "Language of the service's error messages: en-US (default) or zh-CN.",
    ),
}


# -- Airflow 2.11: the webserver's Flask-AppBuilder form ----------------------------------------


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="The Flask-AppBuilder connection form is Airflow 2's.")
def test_airflow_2_providers_manager_registers_the_hooks_wtforms_fields_and_behaviour():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()

    widgets = {
        widget.field_name: (
            widget.field.field_class.__name__,
            widget.field.args[0],
            widget.field.kwargs["description"],
            widget.is_sensitive,
        )
        for name, widget in manager.connection_form_widgets.items()
        if name.startswith(f"extra__{CONN_TYPE}__")
    }
    assert widgets == {
        "region": ("StringField", *LABELS["region"], False),
        "endpoint": ("StringField", *LABELS["endpoint"], False),
        "token": ("PasswordField", *LABELS["token"], True),
        "request_timeout": ("IntegerField", *LABELS["request_timeout"], False),
        "proxy": ("StringField", *LABELS["proxy"], False),
        "language": ("StringField", *LABELS["language"], False),
    }
    assert manager.field_behaviours[CONN_TYPE] == EXPECTED_BEHAVIOUR
    assert manager.hooks[CONN_TYPE].hook_name == "Tencent Cloud MPS"


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="The Flask-AppBuilder connection form is Airflow 2's.")
def test_airflow_2_connection_form_renders_and_validates_the_mps_fields():
    from airflow.www.forms import create_connection_form_class
    from flask import Flask
    from werkzeug.datastructures import MultiDict

    form_class = create_connection_form_class()
    with Flask(__name__).test_request_context():
        form = form_class(
            MultiDict(
                {
                    "extra__tencentcloud_mps__region": "ap-shanghai",
                    "extra__tencentcloud_mps__request_timeout": "0",
                    "extra__tencentcloud_mps__language": "fr-FR",
                }
            ),
            meta={"csrf": False},
        )
        fields = {name: form[f"extra__{CONN_TYPE}__{name}"] for name in LABELS}
        checked = {name: (field.validate(form), field.data, field.errors) for name, field in fields.items()}
        token_html = fields["token"]()

    assert (CONN_TYPE, "Tencent Cloud MPS") in form.conn_type.choices
    assert {name: (field.label.text, field.description) for name, field in fields.items()} == LABELS
    assert checked == {
        "region": (True, "ap-shanghai", []),
        "endpoint": (True, None, []),
        "token": (True, None, []),
        "request_timeout": (False, 0, ["Number must be at least 1."]),
        "proxy": (True, None, []),
        "language": (False, "fr-FR", ["Invalid value, must be one of: en-US, zh-CN."]),
    }
    assert 'type="password"' in token_html


# -- Airflow 3: the API server's form service -----------------------------------------------------

#: The extra fields as the UI receives them on 3.0 and 3.1 (from the hook's WTForms fields).
EXTRA_FIELDS_FROM_THE_HOOK = {
    "region": (*LABELS["region"], ["string", "null"], None, None, "ap-guangzhou"),
    "endpoint": (*LABELS["endpoint"], ["string", "null"], None, None, None),
    "token": (*LABELS["token"], ["string", "null"], "password", None, None),
    "request_timeout": (*LABELS["request_timeout"], ["integer", "null"], None, None, 60),
    "proxy": (*LABELS["proxy"], ["string", "null"], None, None, None),
    "language": (*LABELS["language"], ["string", "null"], None, ["en-US", "zh-CN"], "en-US"),
}
#: From provider info on 3.2+: the timeout may be fractional and the endpoint is checked as a URL.
EXTRA_FIELDS_FROM_PROVIDER_INFO = {
    **EXTRA_FIELDS_FROM_THE_HOOK,
    "endpoint": (*LABELS["endpoint"], ["string", "null"], "url", None, None),
    "request_timeout": (*LABELS["request_timeout"], ["number", "null"], None, None, 60),
}

HOOK_META_DATA = """
import json, sys
if sys.argv[1] == "stub-fab":
    # Airflow 3.0 builds hook forms only when WTForms is importable (the FAB provider installs it);
    # 3.1+ stubs these modules itself.  Stub them the way 3.1 does.
    from unittest.mock import MagicMock
    for name in ("wtforms", "wtforms.csrf", "wtforms.fields", "wtforms.fields.simple",
                 "wtforms.validators", "flask_babel", "flask_appbuilder", "flask_appbuilder.fieldwidgets"):
        sys.modules[name] = MagicMock()
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
[meta] = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "tencentcloud_mps"]
sdk = sorted(m for m in sys.modules if m.startswith("tencentcloud"))
print(json.dumps({"meta": meta.model_dump(mode="json"), "sdk": sdk}))
"""


@pytest.fixture(scope="module")
def ui_hook_meta_data() -> dict[str, Any]:
    """What the API server's ``/ui/connections/hook_meta`` serves for the connection type (fresh process)."""
    stub_fab = "keep" if AIRFLOW_V_3_1_PLUS else "stub-fab"
    return fresh_interpreter_json(HOOK_META_DATA, stub_fab)


def _extra_fields(meta: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Each extra field as ``(title, description, type, format, enum, default)``."""
    return {
        name: (
            field["schema"]["title"],
            field["description"],
            field["schema"]["type"],
            field["schema"].get("format"),
            field["schema"].get("enum"),
            field["value"],
        )
        for name, field in meta["extra_fields"].items()
    }


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2 has no API server form service.")
def test_airflow_3_connection_form_service_shows_the_mps_fields(ui_hook_meta_data):
    meta = ui_hook_meta_data["meta"]

    expected = EXTRA_FIELDS_FROM_PROVIDER_INFO if AIRFLOW_V_3_2_PLUS else EXTRA_FIELDS_FROM_THE_HOOK
    assert _extra_fields(meta) == expected
    assert (meta["hook_name"], meta["hook_class_name"]) == (
        "Tencent Cloud MPS",
        "airflow_provider_mps.hooks.mps.MpsHook",
    )
    hidden = {"hidden": True, "title": None, "placeholder": None}
    assert meta["standard_fields"] == {
        "description": None,
        "url_schema": hidden,
        "host": hidden,
        "port": hidden,
        "login": {
            "hidden": False,
            "title": "SecretId",
            "placeholder": "AKID... (empty: use the Tencent Cloud credential chain)",
        },
        "password": {"hidden": False, "title": "SecretKey", "placeholder": "SecretKey of the API key"},
    }
    assert ui_hook_meta_data["sdk"] == []  # building the form does not import the Tencent Cloud SDK


# -- Airflow 3.2+: provider info, the hook's methods left alone -----------------------------------


HOOK_FROM_PROVIDER_INFO = """
import json, sys, warnings
from unittest.mock import MagicMock
# Make WTForms importable, so that a ProvidersManager which did ask the hook would reach its methods.
for name in ("wtforms", "wtforms.validators", "flask_appbuilder", "flask_appbuilder.fieldwidgets"):
    sys.modules[name] = MagicMock()
from airflow_provider_mps.hooks.mps import MpsHook
called = []
for name in ("get_connection_form_widgets", "get_ui_field_behaviour"):
    original = getattr(MpsHook, name)
    def recording(cls, name=name, original=original):
        called.append(name)
        return original()
    setattr(MpsHook, name, classmethod(recording))
from airflow.providers_manager import ProvidersManager
manager = ProvidersManager()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    hook = manager.hooks["tencentcloud_mps"]
widgets = {
    name: [widget.field["schema"]["type"], widget.is_sensitive]
    for name, widget in manager.connection_form_widgets.items()
    if name.startswith("extra__tencentcloud_mps__")
}
print(json.dumps({
    "hook": [hook.hook_class_name, hook.connection_id_attribute_name, hook.hook_name],
    "widgets": widgets,
    "behaviour": manager.field_behaviours["tencentcloud_mps"],
    "called": called,
    "warnings": [str(w.message) for w in caught if "MpsHook" in str(w.message)],
}))
"""


@pytest.mark.skipif(not AIRFLOW_V_3_2_PLUS, reason="conn-fields in provider info are read from Airflow 3.2.")
def test_airflow_3_2_providers_manager_reads_the_form_from_provider_info_not_the_hook():
    assert fresh_interpreter_json(HOOK_FROM_PROVIDER_INFO) == {
        "hook": ["airflow_provider_mps.hooks.mps.MpsHook", "mps_conn_id", "Tencent Cloud MPS"],
        "widgets": {
            "extra__tencentcloud_mps__region": [["string", "null"], False],
            "extra__tencentcloud_mps__endpoint": [["string", "null"], False],
            "extra__tencentcloud_mps__token": [["string", "null"], True],
            "extra__tencentcloud_mps__request_timeout": [["number", "null"], False],
            "extra__tencentcloud_mps__proxy": [["string", "null"], False],
            "extra__tencentcloud_mps__language": [["string", "null"], False],
        },
        "behaviour": EXPECTED_BEHAVIOUR,
        # The hook's form methods (for older lines) are never called, so 3.2's deprecation
        # warning for them is never raised.
        "called": [],
        "warnings": [],
    }
