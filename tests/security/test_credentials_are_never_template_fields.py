"""Credentials are never template fields or trigger arguments, and no repr of the hook shows them."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import pkgutil
import re
import time

import pytest
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger

import airflow_provider_mps
from tests.security.conftest import SECRET_KEY, SECRETS, TOKEN, connection

CREDENTIAL_NAME = re.compile(
    r"(?i)secret|password|passwd|token|credential|login|api_?key|access_?key|signature"
)


def provider_classes(base: type) -> list[type]:
    """Every subclass of ``base`` defined in the provider's runtime modules (not the emulator)."""
    found = []
    for module_info in pkgutil.walk_packages(airflow_provider_mps.__path__, "airflow_provider_mps."):
        if module_info.name.startswith("airflow_provider_mps.emulator"):
            continue
        try:
            module = importlib.import_module(module_info.name)
        except ModuleNotFoundError as error:
            # utils.openlineage needs the optional openlineage extra; it defines no operator or hook.
            if "openlineage" in (error.name or ""):
                continue
            raise
        found.extend(
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, base) and cls is not base and cls.__module__ == module.__name__
        )
    return sorted(found, key=lambda cls: cls.__qualname__)


OPERATORS = provider_classes(BaseOperator)
TRIGGERS = provider_classes(BaseTrigger)


def test_the_provider_has_operators_sensors_transfers_and_triggers_to_check():
    names = {cls.__name__ for cls in OPERATORS}

    assert {
        "MpsCreateAigcImageTaskOperator",
        "MpsAigcImageTaskSensor",
        "MpsAigcImagesToObjectStorageOperator",
    } <= names
    assert {cls.__name__ for cls in TRIGGERS} >= {"MpsAigcImageTaskTrigger"}


@pytest.mark.parametrize("operator_class", OPERATORS, ids=lambda cls: cls.__name__)
def test_no_template_field_of_any_operator_holds_a_credential(operator_class):
    credential_fields = [name for name in operator_class.template_fields if CREDENTIAL_NAME.search(name)]

    assert credential_fields == []


@pytest.mark.parametrize("trigger_class", TRIGGERS, ids=lambda cls: cls.__name__)
def test_no_trigger_takes_a_credential_argument(trigger_class):
    # A trigger's own arguments, and those its **kwargs pass on to the provider's shared base.
    constructors = [
        vars(cls)["__init__"]
        for cls in trigger_class.__mro__
        if cls.__module__.startswith("airflow_provider_mps") and "__init__" in vars(cls)
    ]
    parameters = [inspect.signature(init).parameters for init in constructors]
    names = [name for params in parameters for name, p in params.items() if p.kind is not p.VAR_KEYWORD]

    assert [name for name in names if CREDENTIAL_NAME.search(name)] == []
    assert "mps_conn_id" in names
    # The base takes no **kwargs of its own: nothing else can reach the serialized trigger.
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters[-1].values())


def test_a_trigger_that_has_used_its_connection_serializes_no_credential(security_emulator, monkeypatch):
    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

    monkeypatch.setenv("AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT", connection(security_emulator.endpoint))
    mps_task_id = MpsHook().create_aigc_image_task(prompt="a safe")
    trigger = MpsAigcImageTaskTrigger(
        mps_task_id=mps_task_id,
        mps_conn_id="tencentcloud_mps_default",
        poll_interval=0.1,
        end_time=time.time() + 30,
    )

    async def first_event():
        try:
            return await anext(trigger.run())
        finally:
            await trigger.cleanup()

    event = asyncio.run(first_event())
    serialized = json.dumps(trigger.serialize()) + json.dumps(event.payload)

    assert event.payload["status"] == "success"
    assert trigger.hook.settings.secret_key == SECRET_KEY  # the hook did load the connection
    assert [secret for secret in SECRETS if secret in serialized] == []


def test_hook_settings_and_credential_reprs_hide_the_key_and_token(security_emulator, monkeypatch):
    from airflow_provider_mps.hooks.mps import MpsHook

    monkeypatch.setenv("AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT", connection(security_emulator.endpoint))
    hook = MpsHook()
    shown = repr(hook.settings) + str(hook.settings) + repr(hook.credential) + repr(hook)

    assert (hook.settings.token, hook.credential.secret_id()) == (TOKEN, hook.settings.secret_id)
    assert [secret for secret in SECRETS if secret in shown] == []
