"""The batch catalogue example DAG, run end to end on a few rows against the emulator."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.transfers.mps_to_object_storage import safe_path_segment
from tests.conftest import EXAMPLE_DAGS
from tests.operators._airflow_records import task_states, xcoms
from tests.operators._dag_runs import run_dag

if TYPE_CHECKING:
    from pathlib import Path

DAG_ID = "example_mps_batch_catalogue"


@pytest.fixture
def image_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "images"
    monkeypatch.setenv("AIRFLOW_VAR_MPS_IMAGE_BASE", f"file://{base}")
    return base


def catalogue() -> list[dict[str, str]]:
    with (EXAMPLE_DAGS / "data" / "catalogue.csv").open(newline="", encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def test_the_catalogue_has_a_few_hundred_distinct_products():
    rows = catalogue()

    assert len(rows) == 300
    assert len({row["sku"] for row in rows}) == 300
    assert set(rows[0]) == {"sku", "name", "material", "colour", "setting"}


def test_the_example_generates_one_image_per_row_from_one_batch_task_and_saves_them(
    airflow_home: Path, mps_conn: Any, image_base: Path
):
    from airflow.models.dagbag import DagBag

    mps_conn.configure(wait_seconds=0, run_seconds=0)
    dagbag = DagBag(dag_folder=str(EXAMPLE_DAGS / f"{DAG_ID}.py"))
    assert dagbag.import_errors == {}
    dag = dagbag.get_dag(DAG_ID)

    run = run_dag(dag, run_conf={"limit": 3})

    rows = catalogue()[:3]
    records = xcoms(run.run_id, DAG_ID)
    task_ids = records[("generate_catalogue_images", -1, "return_value")]
    requests = {created["TaskId"]: created["Request"] for created in mps_conn.tasks()}
    assert [requests[task_id] for task_id in task_ids] == [
        {
            "Prompt": f"Studio product photo of a {row['colour']} {row['name'].lower()} made of "
            f"{row['material']}, on {row['setting']}, soft natural light",
            "ModelName": "GEM",
            "NegativePrompt": "text, watermark, people",
            "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
        }
        for row in rows
    ]
    assert len(requests) == 3
    assert records[("generate_catalogue_images", -1, "image_urls")] == [
        [f"{mps_conn.endpoint}/images/{task_id}/0.png"] for task_id in task_ids
    ]
    saved = sorted(str(path.relative_to(image_base)) for path in image_base.rglob("*") if path.is_file())
    assert saved == sorted(
        f"{DAG_ID}/{safe_path_segment(run.run_id)}/{task_id}/0.png" for task_id in task_ids
    )
    assert records[("report", -1, "return_value")] == {"rows": 3, "failed_rows": []}
    assert {state for state, _ in task_states(run.run_id, DAG_ID).values()} == {"success"}
