"""An OpenLineage file transport for the duration of one test, in this process."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


def _clear_openlineage_config_caches() -> None:
    """The provider caches its configuration (and whether it is disabled) on first read."""
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def _listener_manager() -> Any:
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow before 3.1: the core listener manager runs the task listeners
        from airflow.listeners.listener import get_listener_manager
    return get_listener_manager()


def _events_to_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, in_thread: bool
) -> Iterator[Callable[[], list[dict]]]:
    """
    Send OpenLineage events to a file while the caller's test runs; yield a function reading them back.

    :param in_thread: emit in a thread (``execute_in_thread``), or, as the listener does by
        default, in a forked copy of the process running the task.
    """
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

    log_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(log_file), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "False")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", str(in_thread))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "mps-tests")
    _clear_openlineage_config_caches()
    listener = get_openlineage_listener()
    listener.adapter._client = None  # built again from the transport above
    manager = _listener_manager()
    registered_here = not manager.pm.is_registered(listener)
    if registered_here:
        manager.add_listener(listener)

    def read() -> list[dict]:
        if not log_file.exists():
            return []
        return [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines() if line]

    yield read

    if registered_here:
        manager.pm.unregister(listener)
    listener.adapter._client = None
    monkeypatch.undo()
    _clear_openlineage_config_caches()


@pytest.fixture
def lineage_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict]]]:
    """OpenLineage events of this test, emitted in a thread, not in a forked copy of the test process."""
    yield from _events_to_file(tmp_path, monkeypatch, in_thread=True)


@pytest.fixture
def forked_lineage_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], list[dict]]]:
    """OpenLineage events of this test, emitted as the listener does by default: in a forked child."""
    yield from _events_to_file(tmp_path, monkeypatch, in_thread=False)
