"""
The trigger forms of the examples, as Airflow's Params see them on the installed line.

The browser suite (``tests/browser``, Airflow 3.3) clicks the form itself; these checks run on every
line of ``make test-matrix``: the defaults are a valid run configuration (the form can be submitted
untouched), a person's typed values are too, and every optional field accepts "empty" (null), which
is what makes the form leave it unmarked and the Trigger button enabled.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.version_compat import AIRFLOW_V_3_2_PLUS
from tests.conftest import EXAMPLE_DAGS

if TYPE_CHECKING:
    from pathlib import Path

#: Example DAG id -> (its required fields, a person's typed values).
FORMS: dict[str, tuple[set[str], dict[str, Any]]] = {
    "example_mps_ui_triggered": (
        {"prompt", "model_name", "enhance_prompt"},
        {
            "prompt": "一只戴着宇航员头盔的柴犬, watercolor\nsecond line",
            "model_name": "Kling",
            "negative_prompt": None,
            "image_urls": ["https://example.com/ref.png", ""],
            "aspect_ratio": None,
            "resolution": "4K",
        },
    ),
    "example_mps_batch_catalogue": (set(), {"limit": 5}),
}
DAGBAG_MODULE = "airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag"


@pytest.fixture(scope="module")
def dags(airflow_home: Path) -> dict[str, Any]:
    from importlib import import_module

    bag = import_module(DAGBAG_MODULE).DagBag(dag_folder=str(EXAMPLE_DAGS))
    return bag.dags


def _validated(dag: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """What Airflow makes of a run's ``conf`` against the DAG's Params, as when a run is triggered."""
    params = copy.deepcopy(dag.params)
    for name, value in conf.items():
        params[name] = value
    return params.validate()


@pytest.mark.parametrize("dag_id", sorted(FORMS))
def test_the_form_can_be_submitted_with_its_defaults(dags, dag_id):
    dag = dags[dag_id]

    assert _validated(dag, {}) == {name: dag.params[name] for name in dag.params}


@pytest.mark.parametrize("dag_id", sorted(FORMS))
def test_the_form_takes_what_a_person_types(dags, dag_id):
    typed = FORMS[dag_id][1]

    validated = _validated(dags[dag_id], typed)

    assert {name: validated[name] for name in typed} == typed


@pytest.mark.parametrize("dag_id", sorted(FORMS))
def test_only_the_required_fields_refuse_empty(dags, dag_id):
    dag = dags[dag_id]
    refusing_null = set()
    for name in dag.params:
        schema = dag.params.get_param(name).schema
        types = schema.get("type")
        if not (types == "null" or (isinstance(types, list) and "null" in types)):
            refusing_null.add(name)

    assert refusing_null == FORMS[dag_id][0]


def test_an_empty_prompt_is_refused_by_the_form(dags):
    from airflow.providers.common.compat.sdk import ParamValidationError

    with pytest.raises(ParamValidationError, match="prompt"):
        _validated(dags["example_mps_ui_triggered"], {"prompt": ""})
