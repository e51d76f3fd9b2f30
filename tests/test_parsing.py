"""
What parsing a DAG file of MPS operators gives Airflow, built only on Airflow's public interfaces.

The operators assign their arguments as plain attributes and leave ``BaseOperator``'s own
machinery (converters, ``XComArg`` upstream tasks, mapped-task re-creation, extra links) alone;
these tests prove Airflow's behaviour comes through on every supported line, and a source check
keeps Airflow's private names out of the provider.
"""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, conf

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

START = pendulum.datetime(2025, 1, 1, tz="UTC")
PACKAGE = Path(__file__).resolve().parent.parent / "airflow_provider_mps"

#: Per class: keyword arguments covering plain and templated attributes, and which one takes an XComArg.
CASES = {
    MpsCreateAigcImageTaskOperator: (
        {"prompt": "Studio photo for {{ ds }}", "model_name": "GEM", "wait_for_completion": True},
        "prompt",
    ),
    MpsCreateAigcImageBatchOperator: (
        {"requests": ["a cat", "a dog"], "shared_fields": {"model_name": "GEM"}},
        "requests",
    ),
    MpsAigcImageTaskSensor: (
        {"mps_task_id": "{{ ti.xcom_pull('create') }}", "poke_interval": 5},
        "mps_task_id",
    ),
    MpsAigcImagesToObjectStorageOperator: (
        {"mps_task_id": "{{ ti.xcom_pull('create') }}", "destination": "file:///tmp/mps-images/{{ ds }}"},
        "mps_task_id",
    ),
}


@pytest.mark.parametrize("cls", list(CASES), ids=lambda cls: cls.__name__)
def test_arguments_are_plain_attributes_and_airflow_converts_and_links_them(cls):
    kwargs, xcom_field = CASES[cls]
    with DAG(
        f"parsing_{cls.__name__}",
        schedule=None,
        start_date=START,
        default_args={"owner": "catalogue", "retries": "2", "mps_conn_id": "mps_other"},
    ):
        upstream = MpsCreateAigcImageTaskOperator(task_id="create", prompt="a cat")
        literal = cls(task_id="literal", retry_delay=7, **kwargs)
        from_xcom = cls(task_id="from_xcom", **{**kwargs, xcom_field: upstream.output})

    assert {name: getattr(literal, name) for name in kwargs} == kwargs
    # default_args reach the provider's own arguments, and Airflow's converters still run.
    assert (literal.mps_conn_id, literal.owner, literal.retries) == ("mps_other", "catalogue", 2)
    assert literal.retry_delay == datetime.timedelta(seconds=7)
    assert (literal.upstream_task_ids, from_xcom.upstream_task_ids) == (set(), {"create"})


def test_an_xcomarg_assigned_after_init_still_adds_its_upstream_task():
    with DAG("parsing_after_init", schedule=None, start_date=START):
        upstream = MpsCreateAigcImageTaskOperator(task_id="create", prompt="a cat")
        operator = MpsCreateAigcImageTaskOperator(task_id="later", prompt="a dog")
        operator.prompt = upstream.output

    assert operator.upstream_task_ids == {"create"}


def test_mapped_operators_unmap_to_operators_with_the_partial_and_expanded_arguments():
    with DAG("parsing_mapped", schedule=None, start_date=START, default_args={"retries": 1}):
        mapped = MpsCreateAigcImageTaskOperator.partial(task_id="mapped", model_name="GEM").expand(
            prompt=["a cat", "a dog"]
        )

    unmapped = mapped.unmap({"prompt": "a dog"})

    assert isinstance(unmapped, MpsCreateAigcImageTaskOperator)
    assert (unmapped.prompt, unmapped.model_name, unmapped.retries) == ("a dog", "GEM", 1)


def test_the_sensor_timeout_comes_from_default_args_then_from_the_sensors_config():
    with DAG("parsing_sensor_timeout", schedule=None, start_date=START, default_args={"timeout": 30}):
        from_default_args = MpsAigcImageTaskSensor(task_id="a", mps_task_id="x")
        given = MpsAigcImageTaskSensor(task_id="b", mps_task_id="x", timeout=45)
    with DAG("parsing_sensor_no_timeout", schedule=None, start_date=START):
        from_config = MpsAigcImageTaskSensor(task_id="c", mps_task_id="x")

    assert (from_default_args.timeout, given.timeout) == (30, 45)
    assert from_config.timeout == conf.getfloat("sensors", "default_timeout")


# -- no Airflow internals ---------------------------------------------------------------------


def _private_airflow_uses(path: Path) -> list[str]:
    """The uses of Airflow internals the provider must not make, as ``"<file>:<line> <what>"``."""
    found = []
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(PACKAGE.parent)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_BaseOperator__"):
            found.append(f"{where}:{line} name-mangled {node.attr}")
        if isinstance(node, ast.Attribute) and node.attr == "__code__":
            found.append(f"{where}:{line} bytecode of a function")
        if isinstance(node, ast.FunctionDef) and node.name == "_set_xcomargs_dependencies":
            found.append(f"{where}:{line} override of BaseOperator._set_xcomargs_dependencies")
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                if any(isinstance(target, ast.Name) and target.id == "__setattr__" for target in targets):
                    found.append(f"{where}:{statement.lineno} replaced __setattr__ in {node.name}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Call)
            and getattr(node.func.value.func, "id", None) == "vars"
        ):
            found.append(f"{where}:{line} vars(...).update")
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__getattr__":
            found.append(f"{where}:{statement.lineno} module __getattr__")
    return found


def test_the_provider_uses_no_airflow_internals():
    found = [use for path in sorted(PACKAGE.rglob("*.py")) for use in _private_airflow_uses(path)]

    assert found == []
