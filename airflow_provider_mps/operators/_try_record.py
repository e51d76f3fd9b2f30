"""
Re-attach on retry before Airflow 3.3: a record of each task instance that outlives its try.

Airflow 3.3 gives every task a ``task_state_store``, and the operators keep there what a retry
needs (the TaskIds they created, the creates whose outcome is unknown) through Airflow's
``ResumableJobMixin``.  Airflow 2.11 to 3.2 have no such store: XComs are cleared when a try starts.
The one public, writable store that every line keeps across tries is the Variable table
(``Variable.get/set/delete`` from a task, on 2.11 through the ORM and on 3.x through the Task
SDK), so there :class:`VariableTryRecord` plays the ``task_state_store``: one Variable per key, named
after the task instance, deleted when the task instance succeeds.

Why Variables and nothing else: XComs are cleared per try; the shared quota storage exists only where
a deployment runs Redis; a table of our own or Airflow's task-instance history are not public.  The
cost is visible rows under Admin -> Variables (prefix :data:`VARIABLE_PREFIX`, described), left
behind only by a task instance that never succeeded; the docs say how to delete them.

:func:`execute_resumable` is ``ResumableJobMixin.execute_resumable``'s decision, for the lines where
common-compat's stand-in always submits: re-attach to a running task, return a ``DONE`` one, and
create anew only when the earlier try left nothing billable (``FAIL``, a vanished task, a changed
request, or no record at all).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The start of the name of every Variable the provider keeps for a retry.
VARIABLE_PREFIX = "tencentcloud_mps.try_record"
#: What a try may carry over on this line: ``task_state_store`` (3.3+) or Variables (before).
STORE_KIND = "task_state_store" if AIRFLOW_V_3_3_PLUS else "Airflow Variables"


class VariableTryRecord:
    """
    A ``task_state_store`` for Airflow 2.11 to 3.2: one Airflow Variable per key, for one task instance.

    Offers what the operators use of the store: :meth:`get`, :meth:`set` and :meth:`delete`, with JSON
    values; and :meth:`clear`, called when the task instance succeeded.  Safe to use from the batch's
    sending threads: each key is its own Variable, and what this try wrote is remembered under a lock.

    :param dag_id: the task instance's DAG.
    :param task_id: its task.
    :param run_id: its DAG run.
    :param map_index: its map index (-1 when not mapped).
    """

    def __init__(self, *, dag_id: str, task_id: str, run_id: str, map_index: int) -> None:
        identity = json.dumps([dag_id, task_id, run_id, map_index])
        self.name = f"{VARIABLE_PREFIX}.{hashlib.sha256(identity.encode()).hexdigest()[:24]}"
        self.description = (
            f"Kept by the Tencent Cloud MPS provider so a retry of {dag_id}.{task_id} (run {run_id}, "
            f"map index {map_index}) re-attaches to its MPS tasks instead of paying again; deleted when "
            "that task instance succeeds."
        )
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, context: Context) -> VariableTryRecord:
        """
        The record of the task instance running ``context``.

        :param context: the task context.
        """
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=map_index if isinstance(map_index, int) else -1,
        )

    def _variable(self, key: str) -> str:
        return f"{self.name}.{key}"

    def get(self, key: str, default: Any = None) -> Any:
        """
        Return the value kept under ``key`` by this or an earlier try, or ``default``.

        :param key: the store key, e.g. ``mps_aigc_image_task``.
        :param default: what to return when nothing is kept.
        """
        from airflow.providers.common.compat.sdk import Variable

        value = Variable.get(self._variable(key), None, deserialize_json=True)
        if value is None:
            return default
        with self._lock:
            self._keys.add(key)
        return value

    def set(self, key: str, value: Any) -> None:
        """
        Keep ``value`` (JSON-serializable) under ``key`` for a later try.

        :param key: the store key.
        :param value: the value.
        """
        from airflow.providers.common.compat.sdk import Variable

        with self._lock:
            self._keys.add(key)
        Variable.set(self._variable(key), value, description=self.description, serialize_json=True)

    def delete(self, key: str) -> None:
        """
        Forget ``key``.

        :param key: the store key.
        """
        from airflow.providers.common.compat.sdk import Variable

        with self._lock:
            self._keys.discard(key)
        Variable.delete(self._variable(key))

    def clear(self, keys: tuple[str, ...] = ()) -> None:
        """
        Delete every Variable this try read or wrote, and ``keys``: the task instance succeeded.

        :param keys: keys to delete although this try did not touch them.
        """
        with self._lock:
            touched = sorted(self._keys | set(keys))
        for key in touched:
            self.delete(key)


def try_record(context: Context, *, durable: bool) -> Any:
    """
    Return where this try keeps what a retry needs, on any Airflow line, or ``None``.

    :param context: the task context.
    :param durable: the operator's ``durable``; ``False`` keeps nothing (every try creates anew).
    :return: the context's ``task_state_store`` (3.3+), else a :class:`VariableTryRecord`, or ``None``.
    """
    if not durable:
        return None
    store = context.get("task_state_store")
    if store is not None or AIRFLOW_V_3_3_PLUS:
        return store
    return VariableTryRecord.of(context)


def execute_resumable(operator: Any, context: Context, store: Any) -> Any:
    """
    Resume what an earlier try left in ``store``, or submit: ``ResumableJobMixin``'s decision, on every line.

    On Airflow 3.3+ this is the mixin's own ``execute_resumable`` (it reads the same store).  Before,
    the same decision is taken here: a stored job that is running is waited for, a ``DONE`` one is
    returned, and anything else (``FAIL``, unknown to the service, made for another request, or no
    record at all) is submitted anew.

    :param operator: a create operator implementing the mixin's methods.
    :param context: the task context.
    :param store: :func:`try_record`'s store, or ``None``.
    """
    if AIRFLOW_V_3_3_PLUS or store is None:
        return operator.execute_resumable(context)
    # The mixin's decision and its log lines, so a task log reads the same on every line.
    external_id = store.get(operator.external_id_key)
    if external_id:
        status = operator.get_job_status(external_id, context)
        if operator.is_job_active(status):
            operator.log.info("Reconnecting to existing job")
            operator.poll_until_complete(external_id, context)
            return operator.get_job_result(external_id, context)
        if operator.is_job_succeeded(status):
            operator.log.info("Job already completed successfully, skipping resubmission")
            return operator.get_job_result(external_id, context)
        operator.log.warning("Prior job in terminal state, resubmitting fresh")
    external_id = operator.submit_job(context)
    if external_id is not None:
        store.set(operator.external_id_key, external_id)
    operator.poll_until_complete(external_id, context)
    return operator.get_job_result(external_id, context)


def forget_on_success(store: Any, *keys: str) -> None:
    """
    Delete a :class:`VariableTryRecord` once its task instance is about to succeed.

    The ``task_state_store`` of 3.3 is left to Airflow's ``[state_store] clear_on_success``.

    :param store: :func:`try_record`'s store, or ``None``.
    :param keys: keys to delete although this try did not touch them.
    """
    if isinstance(store, VariableTryRecord):
        store.clear(keys)
