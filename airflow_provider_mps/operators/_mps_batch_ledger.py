"""
The batch operator's ledger: what each item's create did, kept in the ``task_state_store``.

A retried (or cleared) try reads it to re-attach to the tasks an earlier try created
(:mod:`~airflow_provider_mps.operators._mps_batch_resume`).  It is written ahead: an item is
recorded as *being sent* before its create leaves, then overwritten with its TaskId once the
service answers.  A worker killed between the two (the service created the task, the answer never
reached the ledger) leaves the item *possibly created*, which a retry does not send again unless
``resubmit_on_retry``: the batch never pays twice for it, and the failure names it.

Writes are grouped: every item's entry changes in memory at once, and one write of a chunk carries
every change made to it while the previous write was under way.  Twenty creates a second thus cost
far fewer than forty writes when the store is slow, and no thread waits for more than one write
after its own change.  :class:`LedgerRecorder` is how the submission writes it, from the threads
sending the creates.  Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.core.api import CREATE_ACTION
from airflow_provider_mps.core.errors import classify

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch_submit import CreateOutcome

#: task_state_store key prefix; chunk ``c`` of the ledger lives under ``"<prefix>.<c>"``.
LEDGER_KEY_PREFIX = "mps_aigc_image_batch"
#: Items per ledger chunk: a chunk stays far below Airflow's 64 KB per-value guideline.
LEDGER_CHUNK_SIZE = 100


class BatchLedger:
    """
    What each item's create produced, kept in the ``task_state_store`` as it happens.

    Item ``i`` lives in chunk ``i // LEDGER_CHUNK_SIZE`` under the key ``"<prefix>.<chunk>"``, as
    ``{"<i>": entry}``; an entry holds the fingerprint ``f`` of the request it was made for and
    either ``TaskId`` / ``RequestId`` (created; ``Status`` once it is known to have failed) or
    ``PossiblyCreated`` (the create may have reached the service and its answer is unknown: it
    failed after sending, or ``Sending``, the try ended while it was in flight; with ``At``,
    ``Prompt`` and ``Count``, how many creates of the item may have created a task).  An item whose
    create certainly created nothing has no entry.

    :param store: the task's ``task_state_store`` accessor.
    :param count: how many items the batch has.
    """

    def __init__(self, store: Any, count: int) -> None:
        self._store = store
        self._count = count
        self._chunks: dict[int, dict[str, Any]] = {}
        self._changes: dict[int, int] = {}  # chunk -> changes made in memory
        self._written: dict[int, int] = {}  # chunk -> changes the store holds
        self._lock = threading.Lock()  # the in-memory chunks
        self._write_lock = threading.Lock()  # one store write at a time
        self._try = uuid.uuid4().hex[:12]  # marks this try's "being sent" entries

    @staticmethod
    def key(chunk: int) -> str:
        """The task_state_store key of ``chunk``."""
        return f"{LEDGER_KEY_PREFIX}.{chunk}"

    @property
    def chunk_count(self) -> int:
        """How many chunks a batch of this size spans."""
        return math.ceil(self._count / LEDGER_CHUNK_SIZE)

    def _chunk(self, chunk: int) -> dict[str, Any]:
        if chunk not in self._chunks:
            stored = self._store.get(self.key(chunk))
            self._chunks[chunk] = dict(stored) if isinstance(stored, dict) else {}
        return self._chunks[chunk]

    def load(self, fingerprints: list[str]) -> dict[int, dict[str, Any]]:
        """
        Return the stored entries of items whose request is unchanged, by item index.

        :param fingerprints: the :func:`fingerprint` of each current item.
        """
        entries: dict[int, dict[str, Any]] = {}
        for chunk in range(self.chunk_count):
            for key, entry in self._chunk(chunk).items():
                index = int(key) if key.isdigit() else -1
                unchanged = 0 <= index < len(fingerprints) and isinstance(entry, dict)
                if unchanged and entry.get("f") == fingerprints[index]:
                    entries[index] = entry
        return entries

    # -- writing ----------------------------------------------------------------------------------

    def _change(self, index: int, entry_for: Any) -> dict[str, Any] | None:
        """
        Set item ``index``'s entry to ``entry_for(earlier entry)`` and store it; return the new entry.

        An ``entry_for`` that returns ``None`` removes the item's entry.
        """
        chunk = index // LEDGER_CHUNK_SIZE
        with self._lock:
            values = self._chunk(chunk)
            entry = entry_for(values.get(str(index)))
            if entry is None:
                values.pop(str(index), None)
            else:
                values[str(index)] = entry
            self._changes[chunk] = version = self._changes.get(chunk, 0) + 1
        self._write(chunk, version)
        return entry

    def _write(self, chunk: int, version: int) -> None:
        """Return once the store holds change ``version`` of ``chunk``, writing it if nobody has."""
        with self._write_lock:
            if self._written.get(chunk, 0) >= version:
                return  # a write that started after this change carried it
            with self._lock:
                values, latest = dict(self._chunks[chunk]), self._changes[chunk]
            self._store.set(self.key(chunk), values)
            self._written[chunk] = latest

    def record(self, index: int, fingerprint_: str, **entry: Any) -> None:
        """Store ``entry`` for item ``index`` at once; safe from any thread."""
        self._change(index, lambda earlier: {"f": fingerprint_, **entry})

    def record_sending(self, index: int, fingerprint_: str, request: Mapping[str, Any]) -> None:
        """
        Store that item ``index``'s create is about to be sent; return once the store holds it.

        Until :meth:`record` or :meth:`record_possibly_created` replaces it, or
        :meth:`record_not_created` takes it back, a retry treats the item as possibly created.

        :param request: the hook keyword arguments of the create (only the prompt's start is kept).
        """
        from airflow_provider_mps.operators._possibly_created import SENDING_CODE, SENDING_MESSAGE
        from airflow_provider_mps.utils.prompt import prompt_excerpt

        def sending(earlier: Any) -> dict[str, Any]:
            if self._is_sending(earlier):  # sent again by this try after a refusal that created nothing
                return {**earlier, "At": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
            before = earlier if _is_possibly_created(earlier, fingerprint_) else None
            return {
                "f": fingerprint_,
                "PossiblyCreated": True,
                "Sending": True,
                "Code": SENDING_CODE,
                "Message": SENDING_MESSAGE,
                "RequestId": None,
                "At": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "Prompt": prompt_excerpt(request.get("prompt")),
                "Count": _earlier_count(earlier, fingerprint_) + 1,
                "Try": self._try,
                "Earlier": {key: value for key, value in (before or {}).items() if key != "Earlier"} or None,
            }

        self._change(index, sending)

    def record_not_created(self, index: int, fingerprint_: str) -> None:
        """Take back :meth:`record_sending`: the create certainly created nothing."""

        def not_created(earlier: Any) -> dict[str, Any] | None:
            if not self._is_sending(earlier):
                return earlier if isinstance(earlier, dict) else None
            return dict(earlier["Earlier"]) if isinstance(earlier.get("Earlier"), dict) else None

        self._change(index, not_created)

    def record_possibly_created(self, index: int, fingerprint_: str, entry: dict[str, Any]) -> int:
        """
        Store that item ``index``'s create may have created a task; return how many of its creates may have.

        :param index: the item.
        :param fingerprint_: the item's request fingerprint.
        :param entry: the :func:`~airflow_provider_mps.operators._possibly_created.possibly_created_entry`.
        """

        def possibly_created(earlier: Any) -> dict[str, Any]:
            same_send = self._is_sending(earlier)
            count = int(earlier.get("Count") or 1) if same_send else _earlier_count(earlier, fingerprint_) + 1
            return {
                "f": fingerprint_,
                "PossiblyCreated": True,
                "Code": entry["Code"],
                "Message": entry["Message"],
                "RequestId": entry["RequestId"],
                "At": entry["At"],
                "Prompt": entry["Prompt"],
                "Count": count,
            }

        return int((self._change(index, possibly_created) or {}).get("Count") or 1)

    def _is_sending(self, entry: Any) -> bool:
        """Whether ``entry`` is this try's record of a create being sent."""
        return isinstance(entry, dict) and bool(entry.get("Sending")) and entry.get("Try") == self._try

    def mark_failed(self, statuses: Mapping[int, str]) -> None:
        """Record that items' tasks ended without images, so a retry creates them anew."""
        changed: dict[int, int] = {}
        with self._lock:
            for index, status in statuses.items():
                chunk = index // LEDGER_CHUNK_SIZE
                entry = self._chunk(chunk).get(str(index))
                if isinstance(entry, dict) and "TaskId" in entry:
                    self._chunks[chunk][str(index)] = {**entry, "Status": status}
                    changed[chunk] = self._changes[chunk] = self._changes.get(chunk, 0) + 1
        for chunk, version in sorted(changed.items()):
            self._write(chunk, version)


def _is_possibly_created(entry: Any, fingerprint_: str) -> bool:
    return isinstance(entry, dict) and entry.get("f") == fingerprint_ and bool(entry.get("PossiblyCreated"))


def _earlier_count(entry: Any, fingerprint_: str) -> int:
    """How many earlier creates of the same request may have created a task."""
    return int(entry.get("Count") or 1) if _is_possibly_created(entry, fingerprint_) else 0


@dataclass
class LedgerRecorder:
    """
    What :func:`~._mps_batch_submit.submit_batch` records on the sending threads; how it names a duplicate.

    :param hook: the hook sending the creates.
    :param to_create: the prepared requests to send, by item index.
    :param fingerprints: the fingerprint of every item's request, by index.
    :param ledger: where each created TaskId is kept for a retry, if anywhere.
    :param logger: the operator's logger.
    """

    hook: MpsHook
    to_create: Mapping[int, dict[str, Any]]
    fingerprints: list[str]
    ledger: BatchLedger | None
    logger: Any

    def sending(self, index: int) -> None:
        """Record that item ``index``'s create is about to leave (called right before each send)."""
        if self.ledger is not None:
            self.ledger.record_sending(index, self.fingerprints[index], self.to_create[index])

    def keep(self, outcome: CreateOutcome) -> None:
        """Record one create's outcome in the ledger (and its spend), on the thread that sent it."""
        from airflow_provider_mps.operators._possibly_created import possibly_created_entry
        from airflow_provider_mps.operators._spend import count_sent

        index, ledger, fingerprint = outcome.index, self.ledger, self.fingerprints[outcome.index]
        if outcome.response is not None:
            if ledger is not None:
                ledger.record(index, fingerprint, **outcome.response)
            count_sent(self.hook, self.to_create[index])
        elif outcome.error is not None and not classify(outcome.error, CREATE_ACTION).created_nothing:
            entry = possibly_created_entry(outcome.error, self.to_create[index], fingerprint)
            outcome.possibly_created = entry
            outcome.count = ledger.record_possibly_created(index, fingerprint, entry) if ledger else 1
        elif ledger is not None:
            ledger.record_not_created(index, fingerprint)

    def log_duplicate(self, outcome: CreateOutcome) -> None:
        """Log the WARNING naming a create that may have created a task."""
        from airflow_provider_mps.operators._possibly_created import log_possible_duplicate

        request = self.to_create[outcome.index]
        if outcome.possibly_created is None:  # pragma: no cover - called for possibly created items only
            return
        log_possible_duplicate(
            self.logger,
            outcome.possibly_created,
            outcome.count,
            conn_id=self.hook.mps_conn_id,
            model=request.get("model_name"),
            where=f"requests[{outcome.index}]: ",
        )
