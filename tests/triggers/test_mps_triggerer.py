"""
A real ``airflow triggerer`` runs :class:`MpsAigcImageTaskTrigger` to its ``DONE`` event.

The unit tests model the triggerer's supervisor channel; this one starts the real process of the
installed line, with the connection in an ``AIRFLOW_CONN_`` variable.  An asset watcher holds
the trigger (so no DAG run is needed), and the trigger's event becomes an asset event.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not AIRFLOW_V_3_0_PLUS,
        reason="Asset watchers (a trigger without a task) arrived in Airflow 3.0.",
    ),
]

#: Seconds the triggerer gets to start, poll the emulator and record the event.
EVENT_WITHIN = 90


def _watch(trigger: MpsAigcImageTaskTrigger, name: str) -> None:
    """Store ``trigger`` as the watcher of a new asset ``name``, as an ``AssetWatcher`` would."""
    from airflow.models.asset import AssetModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    row = Trigger.from_object(trigger)
    asset = AssetModel(uri=f"file:///tmp/{name}", name=name, group="asset")
    if AIRFLOW_V_3_2_PLUS:  # watchers became their own model in 3.2
        from airflow.models.asset import AssetWatcherModel

        asset.watchers.append(AssetWatcherModel(name=name, trigger=row))
    else:
        asset.triggers.append(row)
    with create_session() as session:
        session.add(asset)


def _events(name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == name)
        )
        return [dict(row.extra) for row in rows]


def _forget(name: str) -> None:
    from airflow.models.asset import AssetModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.name == name)).one()
        for trigger in list(asset.triggers):
            session.delete(session.get(Trigger, trigger.id))
        session.delete(asset)


def test_a_real_triggerer_runs_the_trigger_to_its_done_event(airflow_home, mps_conn, tmp_path: Path):
    task_id = MpsHook().create_aigc_image_task(prompt="A lighthouse at dawn", model_name="GEM")
    name = f"mps_triggerer_{task_id[-12:]}"
    _watch(
        MpsAigcImageTaskTrigger(
            mps_task_id=task_id,
            mps_conn_id="tencentcloud_mps_default",
            poll_interval=0.5,
            end_time=time.time() + 60,
        ),
        name,
    )
    from airflow.configuration import conf

    # The trigger's kwargs are encrypted with this process's Fernet key (random in unit-test mode).
    fernet_key = conf.get("core", "fernet_key")
    log = tmp_path / "triggerer.log"
    with log.open("w") as out:
        triggerer = subprocess.Popen(
            [sys.executable, "-m", "airflow", "triggerer", "--skip-serve-logs"],
            env={**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__CORE__FERNET_KEY": fernet_key},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + EVENT_WITHIN
        while not (events := _events(name)) and time.monotonic() < deadline and triggerer.poll() is None:
            time.sleep(1)
    finally:
        if triggerer.poll() is None:
            os.killpg(triggerer.pid, signal.SIGTERM)
            try:
                triggerer.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(triggerer.pid, signal.SIGKILL)
                triggerer.wait()
        _forget(name)

    assert events, f"No event within {EVENT_WITHIN} s; the triggerer's log:\n{log.read_text()[-4000:]}"
    payload = events[0]["payload"]
    assert (
        payload["status"],
        payload["mps_task_id"],
        (payload["result"] or {}).get("Status"),
        payload["message"],
    ) == (
        "success",
        task_id,
        "DONE",
        f"MPS task {task_id} is DONE.",
    )
    assert "Cannot poll" not in log.read_text()
