"""
The example DAGs: they parse cleanly and without the Tencent SDK, and each runs end to end.

Every example imports ``dag``, ``task`` and ``Param`` through ``airflow.providers.common.compat.sdk``
(``airflow.sdk`` on Airflow 3, ``airflow.decorators`` / ``airflow.models.param`` on 2.11), so every
file parses on every Airflow line the provider supports, and this module runs on each line of
``make test-matrix``.  An example that needs a newer Airflow goes in :data:`NEEDS_NEWER_AIRFLOW`
with the reason: it is then skipped, by name and with that reason, on the older lines.

The end-to-end runs use ``dag.test()`` against the emulator and check that the service received
exactly the rendered prompts and parameters, and that the images landed where the examples say.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_mps.transfers.mps_to_object_storage import safe_path_segment
from airflow_provider_mps.version_compat import AIRFLOW_V_3_2_PLUS, get_base_airflow_version_tuple
from tests.conftest import EXAMPLE_DAGS, run_dag
from tests.operators._airflow_records import task_states, xcoms

if TYPE_CHECKING:
    from pathlib import Path

OUR_EXAMPLES = ("example_mps_scheduled", "example_mps_ui_triggered", "example_mps_data_pipeline")
EXAMPLE_FILES = sorted(path.name for path in EXAMPLE_DAGS.glob("*.py"))

#: Example file -> (oldest Airflow it parses on, why). Empty: every example parses on every line.
NEEDS_NEWER_AIRFLOW: dict[str, tuple[tuple[int, int, int], str]] = {
    "example_mps_human_review.py": ((3, 1, 0), "human-in-the-loop operators of the standard provider"),
}

#: Where DagBag lives on the installed line (moved to airflow.dag_processing in 3.2).
DAGBAG_MODULE = "airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag"


def parsed_here(file_name: str) -> bool:
    """Whether ``file_name`` is expected to parse on the installed Airflow."""
    oldest, _ = NEEDS_NEWER_AIRFLOW.get(file_name, ((0, 0, 0), ""))
    return get_base_airflow_version_tuple() >= oldest


def skip_reason(file_name: str) -> str:
    oldest, why = NEEDS_NEWER_AIRFLOW[file_name]
    needed = ".".join(map(str, oldest))
    return f"{file_name} needs Airflow {needed}+ ({why}); this is Airflow {version('apache-airflow')}"


@pytest.fixture(scope="module")
def dag_bag(airflow_home: Path) -> Any:
    from importlib import import_module

    return import_module(DAGBAG_MODULE).DagBag(dag_folder=str(EXAMPLE_DAGS))


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_example_file_parses_without_errors_on_this_airflow(dag_bag, file_name):
    if not parsed_here(file_name):
        pytest.skip(skip_reason(file_name))
    errors = {path: error for path, error in dag_bag.import_errors.items() if path.endswith(f"/{file_name}")}
    dag_ids = {dag.dag_id for dag in dag_bag.dags.values() if dag.fileloc.endswith(f"/{file_name}")}

    assert (errors, dag_ids) == ({}, {file_name.removesuffix(".py")})


def test_every_example_dag_imports_without_errors(dag_bag):
    expected_errors = {str(EXAMPLE_DAGS / name) for name in EXAMPLE_FILES if not parsed_here(name)}
    assert set(dag_bag.import_errors) == expected_errors
    assert set(OUR_EXAMPLES) <= set(dag_bag.dag_ids)


def test_importing_the_examples_does_not_import_the_tencent_sdk(airflow_home):
    script = (
        "import sys\n"
        f"from {DAGBAG_MODULE} import DagBag\n"
        f"bag = DagBag(dag_folder={str(EXAMPLE_DAGS)!r})\n"
        "print(sorted(bag.import_errors))\n"
        "print(sorted(bag.dag_ids))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'tencentcloud'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    errors, dag_ids, sdk_modules = result.stdout.strip().splitlines()[-3:]
    assert eval(errors) == sorted(str(EXAMPLE_DAGS / name) for name in EXAMPLE_FILES if not parsed_here(name))
    assert set(OUR_EXAMPLES) <= set(eval(dag_ids))
    assert sdk_modules == "[]"


def test_examples_are_documented_and_tagged(dag_bag):
    for dag_id in OUR_EXAMPLES:
        dag = dag_bag.get_dag(dag_id)
        assert (bool(dag.doc_md), sorted(dag.tags)) == (True, ["example", "mps", "tencentcloud"]), dag_id


@pytest.fixture
def image_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the examples save images: the ``mps_image_base`` Variable, set through the environment."""
    base = tmp_path / "images"
    monkeypatch.setenv("AIRFLOW_VAR_MPS_IMAGE_BASE", f"file://{base}")
    return base


@pytest.fixture
def instant_emulator(mps_conn: Any) -> Any:
    """The emulator finishing tasks at once, so savers find them DONE on their first poll."""
    mps_conn.configure(wait_seconds=0, run_seconds=0)
    return mps_conn


def saved_files(base: Path) -> list[str]:
    return sorted(str(path.relative_to(base)) for path in base.rglob("*") if path.is_file())


def test_scheduled_example_draws_the_subject_of_the_day_and_saves_the_image(
    dag_bag, instant_emulator, image_base
):
    logical_date = pendulum.datetime(2025, 3, 1, tz="UTC")
    subjects = json.loads((EXAMPLE_DAGS / "data" / "subjects.json").read_text(encoding="utf-8"))
    subject = subjects[logical_date.toordinal() % len(subjects)]
    dag = dag_bag.get_dag("example_mps_scheduled")

    run = run_dag(dag, logical_date=logical_date)

    [created] = instant_emulator.tasks()
    assert created["Request"] == {
        "Prompt": f"A watercolor postcard of {subject}, soft morning light",
        "ModelName": "GEM",
        "ExtraParameters": {"AspectRatio": "16:9", "OutputFormat": "png"},
    }
    records = xcoms(run.run_id, dag.dag_id)
    mps_task_id = created["TaskId"]
    assert records[("create_image", -1, "return_value")] == mps_task_id
    assert records[("announce", -1, "return_value")] == mps_task_id
    image = f"example_mps_scheduled/{safe_path_segment(run.run_id)}/{mps_task_id}/0.png"
    [saved] = records[("save_images", -1, "return_value")]
    assert (saved["path"], saved["source_url"]) == (
        f"file://{image_base}/{image}",
        f"{instant_emulator.endpoint}/images/{mps_task_id}/0.png",
    )
    assert saved_files(image_base) == [image]
    assert run.state == "success"


def test_ui_triggered_example_is_templated_from_the_form_and_waits_deferred(dag_bag, instant_emulator):
    dag = dag_bag.get_dag("example_mps_ui_triggered")
    form = {
        "prompt": "A fox reading a newspaper\non a park bench, ink and wash",
        "model_name": "Kling",
        "negative_prompt": "text, watermark",
        "enhance_prompt": True,
        "image_urls": ["https://example.com/fox.webp"],
        "aspect_ratio": "3:2",
        "resolution": "1080P",
    }

    run = run_dag(dag, run_conf=form)

    [created] = instant_emulator.tasks()
    assert created["Request"] == {
        "Prompt": "A fox reading a newspaper\non a park bench, ink and wash",
        "ModelName": "Kling",
        "NegativePrompt": "text, watermark",
        "EnhancePrompt": True,
        "ImageInfos": [{"ImageUrl": "https://example.com/fox.webp"}],
        "ExtraParameters": {"AspectRatio": "3:2", "Resolution": "1080P"},
    }
    records = xcoms(run.run_id, dag.dag_id)
    image_urls = [f"{instant_emulator.endpoint}/images/{created['TaskId']}/0.png"]
    assert (
        records[("create_image", -1, "return_value")],
        records[("create_image", -1, "image_urls")],
        records[("show_images", -1, "return_value")],
    ) == (created["TaskId"], image_urls, image_urls)
    assert run.state == "success"


def test_ui_triggered_example_form_defaults_make_a_valid_request(airflow_home):
    from importlib import import_module

    from airflow_provider_mps.validation import build_aigc_image_request

    # Parsed anew: on Airflow 2.11 a dag.test() run with a conf writes it into the DAG's params.
    path = EXAMPLE_DAGS / "example_mps_ui_triggered.py"
    bag = import_module(DAGBAG_MODULE).DagBag(dag_folder=str(path))
    dag = bag.get_dag("example_mps_ui_triggered")

    params = {name: dag.params[name] for name in dag.params}

    assert build_aigc_image_request(
        {
            "prompt": params["prompt"],
            "model_name": params["model_name"],
            "negative_prompt": params["negative_prompt"],
            "enhance_prompt": params["enhance_prompt"],
            "image_infos": params["image_urls"],
            "extra_parameters": {"AspectRatio": params["aspect_ratio"], "Resolution": params["resolution"]},
        }
    ) == {
        "prompt": "A cozy reading nook by a rainy window, warm lamp light, watercolor",
        "model_name": "GEM",
        "enhance_prompt": False,
        "extra_parameters": {"AspectRatio": "1:1", "Resolution": "2K"},
    }


def test_data_pipeline_example_creates_one_task_per_product_and_saves_every_image(
    dag_bag, instant_emulator, image_base
):
    with (EXAMPLE_DAGS / "data" / "products.csv").open(newline="", encoding="utf-8") as products_file:
        products = list(csv.DictReader(products_file))
    dag = dag_bag.get_dag("example_mps_data_pipeline")

    run = run_dag(dag)

    records = xcoms(run.run_id, dag.dag_id)
    task_ids = [records[("create_product_image", index, "return_value")] for index in range(len(products))]
    requests = {created["TaskId"]: created["Request"] for created in instant_emulator.tasks()}
    assert [requests[task_id] for task_id in task_ids] == [
        {
            "Prompt": f"Studio product photo of a {p['colour']} {p['name'].lower()} made of {p['material']}, "
            f"on {p['setting']}, soft natural light, no text",
            "ModelName": "GEM",
            "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
        }
        for p in products
    ]
    assert len(requests) == len(products) == 4
    assert records[("collect_task_ids", -1, "return_value")] == task_ids
    assert saved_files(image_base) == sorted(
        f"example_mps_data_pipeline/{safe_path_segment(run.run_id)}/{task_id}/0.png" for task_id in task_ids
    )
    assert {state for state, _ in task_states(run.run_id, dag.dag_id).values()} == {"success"}
