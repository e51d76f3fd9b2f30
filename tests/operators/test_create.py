"""
How the create operators are built (``operators/_create.py``): what the cheap construction relies on.

The operators skip ``ResumableJobMixin.__init__`` (one ``apply_defaults`` layer less) and assign
only the arguments given, the others being class attributes.  These tests keep the assumptions
true on every Airflow line: the mixin's ``__init__`` sets nothing but ``durable``, each class
attribute is its argument's default, and an operator reads the same values either way.
"""

from __future__ import annotations

import inspect

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps import DEFAULT_CONN_ID
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from bench.parse_vs_dbt_cloud import breakdown_classes

OPERATORS = {
    MpsCreateAigcImageTaskOperator: {"prompt": "a cat"},
    MpsCreateAigcImageBatchOperator: {"requests": ["a cat"]},
}


def _arguments(cls: type) -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(cls.__init__).parameters
    return {name: p for name, p in parameters.items() if name != "self" and p.kind is p.KEYWORD_ONLY}


def test_the_mixins_init_sets_nothing_but_durable_so_the_operators_may_skip_it():
    with DAG("mixin_init", schedule=None):
        # The bench's minimal operators: one straight on BaseOperator, one through the mixin's __init__.
        classes = breakdown_classes(dbt_cloud=False)
        plain, resumable = (
            classes["PlainInit"](task_id="plain"),
            classes["ResumableInit"](task_id="resumable"),
        )

    assert set(vars(resumable)) - set(vars(plain)) == {"durable"}
    assert set(vars(plain)) <= set(vars(resumable))


@pytest.mark.parametrize("cls", list(OPERATORS), ids=lambda cls: cls.__name__)
def test_every_optional_argument_has_its_default_as_class_attribute(cls):
    arguments = _arguments(cls)

    required = {"requests"} if cls is MpsCreateAigcImageBatchOperator else set()
    assert {name for name, p in arguments.items() if p.default is p.empty} == required
    for name, parameter in arguments.items():
        if name == "durable":  # None stands for the mixin's default
            assert (parameter.default, cls.durable) == (None, True)
        elif parameter.default is not parameter.empty:
            assert getattr(cls, name) is parameter.default, name


@pytest.mark.parametrize("cls", list(OPERATORS), ids=lambda cls: cls.__name__)
def test_only_given_arguments_are_assigned_and_every_argument_reads_as_given(cls):
    given = {**OPERATORS[cls], "region": "ap-shanghai", "poll_interval": 10.0, "durable": False}
    with DAG(f"assigned_{cls.__name__}", schedule=None, default_args={"mps_conn_id": "mps_other"}):
        operator = cls(task_id="t", **given)
        defaults = cls(task_id="d", **OPERATORS[cls])

    arguments = _arguments(cls)
    expected = {name: p.default for name, p in arguments.items()} | {"durable": True}
    expected |= {**OPERATORS[cls], "mps_conn_id": "mps_other"}
    assert {name: getattr(defaults, name) for name in arguments} == expected
    assert {name: getattr(operator, name) for name in arguments} == expected | given
    # poll_interval equals its default but is another object: assigned, as any value given.
    assigned = set(arguments) & set(vars(operator))
    assert assigned == {*OPERATORS[cls], "region", "poll_interval", "durable", "mps_conn_id"}
    assert set(arguments) & set(vars(defaults)) == {*OPERATORS[cls], "mps_conn_id"}


def test_a_subclass_default_does_not_replace_the_signatures():
    class Subclass(MpsCreateAigcImageTaskOperator):
        mps_conn_id = "set_on_the_subclass"

    with DAG("subclass_default", schedule=None):
        operator = Subclass(task_id="t", prompt="a cat")

    assert operator.mps_conn_id == DEFAULT_CONN_ID
