"""
The parse-cost measures of ``_parsing`` change nothing an operator ends up with.

Each operator class is built twice from the same arguments: with its fast ``__setattr__`` and
with Airflow's own ``BaseOperator.__setattr__`` put back; everything Airflow keeps of an operator
(its attributes, the init kwargs used to re-create mapped tasks, its upstream tasks, its
serialized form) must come out the same.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys

import pendulum
import pytest
from airflow.sdk import DAG, BaseOperator
from airflow.serialization.serialized_objects import DagSerialization

from airflow_provider_mps import _parsing
from airflow_provider_mps.links.mps import MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator, MpsCreateAigcImageTasksOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

START = pendulum.datetime(2025, 1, 1, tz="UTC")


class TeamOperator(MpsCreateAigcImageTaskOperator):
    """A user's subclass changing an attribute Airflow recorded for re-creating mapped tasks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.owner = "team-x"  # recorded over the default_args value among the init kwargs


#: Per class: keyword arguments covering plain, templated, XComArg and converted attributes.
CASES = {
    MpsCreateAigcImageTaskOperator: {
        "prompt": "Studio photo for {{ ds }}",
        "model_name": "GEM",
        "extra_parameters": {"AspectRatio": "1:1"},
        "retries": "3",
        "retry_delay": 7,
        "wait_for_completion": True,
    },
    MpsCreateAigcImageTasksOperator: {
        "requests": ["a cat", "a dog"],
        "shared_fields": {"model_name": "GEM"},
        "retry_delay": datetime.timedelta(seconds=9),
    },
    TeamOperator: {"prompt": "Banner for {{ ds }}", "model_name": "Hunyuan"},
    MpsAigcImageTaskSensor: {"mps_task_id": "{{ ti.xcom_pull('create') }}", "poke_interval": 5},
    MpsAigcImagesToObjectStorageOperator: {
        "mps_task_id": "{{ ti.xcom_pull('create') }}",
        "destination": "file:///tmp/mps-images/{{ ds }}",
    },
}


def _build(cls: type[BaseOperator], *, with_upstream_xcom: bool) -> tuple[DAG, BaseOperator]:
    with DAG(
        f"parsing_{cls.__name__}",
        schedule=None,
        start_date=START,
        default_args={"owner": "catalogue", "retries": 2, "mps_conn_id": "mps_other"},
        params={"size": "1:1"},
    ) as dag:
        kwargs = dict(CASES[cls])
        if with_upstream_xcom:
            upstream = MpsCreateAigcImageTaskOperator(task_id="create", prompt="a cat")
            if issubclass(cls, MpsCreateAigcImageTaskOperator):
                kwargs["prompt"] = upstream.output
            elif cls is MpsCreateAigcImageTasksOperator:
                kwargs["requests"] = upstream.output
            else:
                kwargs["mps_task_id"] = upstream.output
        operator = cls(task_id="under_test", **kwargs)
    return dag, operator


def _text(items: dict) -> str:
    """``items`` as sorted text, with the addresses in object reprs (one per process run) left out."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(sorted(items.items(), key=lambda item: item[0])))


def _state(dag: DAG, operator: BaseOperator) -> dict:
    return {
        "attributes": _text(vars(operator)),
        "init_kwargs": _text(operator._BaseOperator__init_kwargs),
        "upstream": sorted(operator.upstream_task_ids),
        "serialized": DagSerialization.to_dict(dag)["dag"]["tasks"],
    }


@pytest.mark.parametrize("with_upstream_xcom", [False, True], ids=["literal", "xcom_arg"])
@pytest.mark.parametrize("cls", list(CASES), ids=lambda cls: cls.__name__)
def test_the_fast_setattr_builds_the_same_operator_as_airflows_own(cls, with_upstream_xcom, monkeypatch):
    fast = _state(*_build(cls, with_upstream_xcom=with_upstream_xcom))
    monkeypatch.setattr(cls, "__setattr__", BaseOperator.__setattr__)
    airflow_own = _state(*_build(cls, with_upstream_xcom=with_upstream_xcom))

    assert fast == airflow_own
    assert fast["upstream"] == (["create"] if with_upstream_xcom else [])
    if cls is TeamOperator:
        assert "('owner', 'team-x')" in fast["init_kwargs"]


def test_the_fast_setattr_is_in_use_on_the_airflow_it_was_checked_against():
    # A different BaseOperator.__setattr__ turns the fast path off (slower, never wrong); this
    # test says so loudly, so the check is redone for the new Airflow.
    assert _parsing.FAST_INIT_SETATTR
    assert MpsCreateAigcImageTaskOperator.__setattr__ is _parsing.init_setattr


def test_converters_still_run_and_later_assignments_still_add_upstream_tasks():
    with DAG("parsing_after_init", schedule=None, start_date=START):
        upstream = MpsCreateAigcImageTaskOperator(task_id="create", prompt="a cat")
        operator = MpsCreateAigcImageTaskOperator(task_id="later", prompt="a dog", retries="4")
        operator.retry_delay = 11
        operator.prompt = upstream.output

    assert operator.retries == 4
    assert operator.retry_delay == datetime.timedelta(seconds=11)
    assert operator.upstream_task_ids == {"create"}
    assert operator._BaseOperator__init_kwargs["prompt"] is operator.prompt


def _unmapped() -> BaseOperator:
    with DAG("parsing_mapped", schedule=None, start_date=START, default_args={"retries": 1}):
        mapped = MpsCreateAigcImageTaskOperator.partial(task_id="mapped", model_name="GEM").expand(
            prompt=["a cat", "a dog"]
        )
    return mapped.unmap({"prompt": "a dog"})


def test_mapped_operators_unmap_to_the_same_operator(monkeypatch):
    fast = _unmapped()
    monkeypatch.setattr(MpsCreateAigcImageTaskOperator, "__setattr__", BaseOperator.__setattr__)
    airflow_own = _unmapped()

    assert isinstance(fast, MpsCreateAigcImageTaskOperator)
    assert (fast.prompt, fast.model_name, fast.retries) == ("a dog", "GEM", 1)
    assert _text(vars(fast)) == _text(vars(airflow_own))


def test_extra_links_are_built_on_first_read_and_serialized():
    # Imported in a fresh process: this one has imported the link classes already.
    code = (
        "import sys\n"
        "from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator as Op\n"
        "before = 'airflow_provider_mps.links.mps' in sys.modules\n"
        "names = [type(link).__name__ for link in Op.operator_extra_links]\n"
        "print(before, names, 'airflow_provider_mps.links.mps' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == ("False ['MpsAigcImageLink', 'MpsConsoleTaskLink'] True")

    dag, operator = _build(MpsCreateAigcImageTaskOperator, with_upstream_xcom=False)
    assert [type(link) for link in operator.operator_extra_links] == [MpsAigcImageLink, MpsConsoleTaskLink]
    assert operator.operator_extra_links is MpsCreateAigcImageTaskOperator.operator_extra_links
    serialized = DagSerialization.to_dict(dag)["dag"]["tasks"][0]["__var"]["_operator_extra_links"]
    assert serialized == {
        "MPS Generated Image": "_link_MpsAigcImageLink",
        "MPS Console": "_link_MpsConsoleTaskLink",
    }


def test_the_sensor_timeout_comes_from_default_args_then_from_the_sensors_config():
    from airflow.sdk.configuration import conf

    with DAG("parsing_sensor_timeout", schedule=None, start_date=START, default_args={"timeout": 30}):
        from_default_args = MpsAigcImageTaskSensor(task_id="a", mps_task_id="x")
        given = MpsAigcImageTaskSensor(task_id="b", mps_task_id="x", timeout=45)
    with DAG("parsing_sensor_no_timeout", schedule=None, start_date=START):
        from_config = MpsAigcImageTaskSensor(task_id="c", mps_task_id="x")

    assert (from_default_args.timeout, given.timeout) == (30, 45)
    assert from_config.timeout == conf.getfloat("sensors", "default_timeout")
