"""
The shipped example DAGs, run by a real scheduler, LocalExecutor workers and triggerer.

Each test drives Airflow as a user does (unpause, trigger with conf, or let the schedule fire)
and checks Airflow's own records (task states seen, tries, XComs, extra links) against the
emulator's (every request received, every task created) and the files in storage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
import pytest

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.integration

UI_DAG = "example_mps_ui_triggered"
SCHEDULED_DAG = "example_mps_scheduled"
PIPELINE_DAG = "example_mps_data_pipeline"
CREATE = "CreateAigcImageTask"


def _creates(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [request for request in emulator.requests() if request["Action"] == CREATE]


def _files(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme in ("file", ""), url
    return Path(parsed.path)


def _assert_saved(saved: list[dict[str, Any]], mps_task: dict[str, Any], image_dir: Path) -> set[Path]:
    """Check every saved image against the emulator's original; return the local paths."""
    assert [entry["source_url"] for entry in saved] == mps_task["ImageUrls"]
    paths = set()
    for entry in saved:
        path = _local_path(entry["path"])
        assert path.is_relative_to(image_dir), entry
        content = path.read_bytes()
        assert content == httpx.get(entry["source_url"], timeout=10).content
        assert entry == {
            "path": entry["path"],
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "source_url": entry["source_url"],
            "content_type": "image/png",
        }
        paths.add(path)
    return paths


def test_ui_triggered_example_defers_frees_its_worker_and_creates_one_task_with_the_conf_prompt(
    cluster: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    # The deferred wait spans a few of the example's 5 s polls.
    mps_emulator.configure(wait_seconds=1, run_seconds=6)
    cluster.wait_for_dags([UI_DAG])
    cluster.unpause(UI_DAG)
    prompt = "A paper boat on a puddle after the rain, typed in the Airflow trigger form"

    run_id = cluster.trigger(UI_DAG, {"prompt": prompt})
    watch = cluster.wait_for_run(UI_DAG, run_id)

    assert watch.state == "success", cluster.explain(UI_DAG, run_id)
    states = watch.ti_states["create_image"]
    assert "deferred" in states, cluster.explain(UI_DAG, run_id)
    assert states[-1] == "success", cluster.explain(UI_DAG, run_id)
    assert watch.freed_while_deferred == {"create_image": True}, cluster.explain(UI_DAG, run_id)
    assert [(t["try_number"], t["state"]) for t in cluster.tries(UI_DAG, run_id, "create_image")] == [
        (1, "success")
    ]
    assert [(c["Action"], c["ErrorCode"]) for c in _creates(mps_emulator)] == [(CREATE, None)]
    (mps_task,) = mps_emulator.tasks()
    assert mps_task["Request"] == {
        "Prompt": prompt,
        "ModelName": "GEM",
        "EnhancePrompt": False,
        "ExtraParameters": {"AspectRatio": "1:1", "Resolution": "2K"},
    }
    assert mps_task["Status"] == "DONE"
    assert cluster.xcom(UI_DAG, run_id, "create_image") == mps_task["TaskId"]
    assert cluster.xcom(UI_DAG, run_id, "create_image", "image_urls") == mps_task["ImageUrls"]
    assert cluster.xcom(UI_DAG, run_id, "show_images") == mps_task["ImageUrls"]
    links = cluster.extra_links(UI_DAG, run_id, "create_image")
    assert links["MPS Generated Image"] == mps_task["ImageUrls"][0]
    assert mps_task["TaskId"] in links["MPS Console"]


def test_scheduled_example_runs_on_its_schedule_and_keeps_the_image_in_storage(
    cluster: AirflowCluster, mps_emulator: EmulatorHandle, mps_image_dir: Path
) -> None:
    cluster.wait_for_dags([SCHEDULED_DAG])
    files_before = _files(mps_image_dir)
    cluster.unpause(SCHEDULED_DAG)  # catchup=False: the scheduler creates the latest daily run
    try:
        cluster.wait_for(
            lambda: len(cluster.dag_runs(SCHEDULED_DAG)) >= 1,
            timeout=60,
            what=lambda: "the scheduler to create the daily run",
        )
        run = cluster.dag_runs(SCHEDULED_DAG)[0]
        run_id = run["dag_run_id"]
        watch = cluster.wait_for_run(SCHEDULED_DAG, run_id)
    finally:
        cluster.pause(SCHEDULED_DAG)  # (a paused DAG's runs do not progress, so only now)

    assert watch.state == "success", cluster.explain(SCHEDULED_DAG, run_id)
    assert run["run_type"] == "scheduled"
    subject = cluster.xcom(SCHEDULED_DAG, run_id, "pick_subject")
    assert [(c["Action"], c["ErrorCode"]) for c in _creates(mps_emulator)] == [(CREATE, None)]
    (mps_task,) = mps_emulator.tasks()
    assert mps_task["Request"] == {
        "Prompt": f"A watercolor postcard of {subject}, soft morning light",
        "ModelName": "GEM",
        "ExtraParameters": {"AspectRatio": "16:9", "OutputFormat": "png"},
    }
    assert cluster.xcom(SCHEDULED_DAG, run_id, "create_image") == mps_task["TaskId"]
    assert cluster.xcom(SCHEDULED_DAG, run_id, "announce") == mps_task["TaskId"]
    saved = cluster.xcom(SCHEDULED_DAG, run_id, "save_images")
    assert _files(mps_image_dir) - files_before == _assert_saved(saved, mps_task, mps_image_dir)


def test_data_pipeline_example_creates_one_task_per_record_and_keeps_every_image(
    cluster: AirflowCluster, mps_emulator: EmulatorHandle, mps_image_dir: Path
) -> None:
    cluster.wait_for_dags([PIPELINE_DAG])
    cluster.ensure_pool("mps_aigc", 20)  # as the example's docstring tells users to
    cluster.unpause(PIPELINE_DAG)
    files_before = _files(mps_image_dir)

    run_id = cluster.trigger(PIPELINE_DAG)
    watch = cluster.wait_for_run(PIPELINE_DAG, run_id, timeout=180)

    assert watch.state == "success", cluster.explain(PIPELINE_DAG, run_id)
    prompts = cluster.xcom(PIPELINE_DAG, run_id, "build_prompts")
    assert len(prompts) == 4  # one per record of data/products.csv
    task_ids = [
        cluster.xcom(PIPELINE_DAG, run_id, "create_product_image", map_index=index)
        for index in range(len(prompts))
    ]
    assert cluster.xcom(PIPELINE_DAG, run_id, "collect_task_ids") == task_ids
    assert [(c["Action"], c["ErrorCode"]) for c in _creates(mps_emulator)] == [(CREATE, None)] * 4
    mps_tasks = {task["TaskId"]: task for task in mps_emulator.tasks()}
    assert {task_id: task["Request"]["Prompt"] for task_id, task in mps_tasks.items()} == dict(
        zip(task_ids, prompts, strict=True)
    )
    saved_paths: set[Path] = set()
    for index, task_id in enumerate(task_ids):
        saved = cluster.xcom(PIPELINE_DAG, run_id, "save_product_images", map_index=index)
        saved_paths |= _assert_saved(saved, mps_tasks[task_id], mps_image_dir)
    assert _files(mps_image_dir) - files_before == saved_paths
