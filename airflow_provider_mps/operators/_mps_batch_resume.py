"""
What a retried (or cleared) try of the batch operator does with an earlier try's record.

:func:`resume_run` reads the ledger an earlier try left (``task_state_store`` or Variables):
items with a task are re-attached to, possibly created items are failures never sent again (unless
``resubmit_on_retry``).  :func:`possibly_created_failure` fails a batch without Airflow retries when
those items alone are more than ``max_failed_items``: no retry could succeed without sending them
again.  Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.operators._mps_batch import BatchRun, item_failure


def resume_run(ledger: Any, fingerprints: list[str], *, resubmit_on_retry: bool, logger: Any) -> BatchRun:
    """
    Return this try's state of every item, from what an earlier try recorded in ``ledger``.

    Items with a task (not known to have failed) are re-attached to.  An item whose earlier create may
    have created a task is a ``possibly_created`` failure, never sent again, unless
    ``resubmit_on_retry``: then it is sent again, counted as a possible duplicate in the log.

    :param ledger: the :class:`~airflow_provider_mps.operators._mps_batch_submit.BatchLedger`, or ``None``.
    :param fingerprints: the fingerprint of every current item.
    :param resubmit_on_retry: the operator's opt-in to send such items again.
    :param logger: the operator's logger.
    """
    from airflow_provider_mps.operators._possibly_created import describe_entry

    run = BatchRun.empty(len(fingerprints))
    if ledger is None:
        return run
    resent = 0
    for index, entry in ledger.load(fingerprints).items():
        if entry.get("PossiblyCreated"):
            if resubmit_on_retry:
                resent += 1
                logger.warning(
                    "requests[%s]: sending it again, as resubmit_on_retry=True allows, although %s earlier "
                    "create(s) of it may have created a task (the latest %s).",
                    index,
                    entry.get("Count") or 1,
                    describe_entry(entry),
                )
                continue
            run.possibly_created[index] = entry
            run.failures[index] = item_failure(
                index,
                stage="create",
                code=str(entry.get("Code")),
                message=(
                    f"An earlier try's create may have created a task whose TaskId is lost "
                    f"({entry.get('Message') or describe_entry(entry)}); it is not resent, to avoid a "
                    "duplicate task."
                ),
                request_id=entry.get("RequestId"),
                possibly_created=True,
            )
        elif isinstance(entry.get("TaskId"), str) and "Status" not in entry:
            run.task_ids[index], run.request_ids[index] = entry["TaskId"], entry.get("RequestId")
    reattached = sum(task_id is not None for task_id in run.task_ids)
    if reattached or run.failures or resent:
        logger.info(
            "Re-attached to %s MPS task(s) created by an earlier try; %s item(s) may have been created "
            "by it and are not resent, %s are sent again.",
            reattached,
            len(run.failures),
            resent,
        )
    return run


def possibly_created_failure(run: BatchRun, count: int, max_failed_items: int | None) -> Exception | None:
    """
    The no-retry error of a batch whose possibly created items alone are more than ``max_failed_items``.

    No retry can succeed then without sending them again (and possibly paying twice).

    :param run: this try's state of every item.
    :param count: how many items the batch has.
    :param max_failed_items: the operator's limit.
    """
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_mps.operators._possibly_created import OPT_IN, describe_entry

    possibly = sorted(index for index, failure in run.failures.items() if failure["possibly_created"])
    if not possibly or max_failed_items is None or len(possibly) <= max_failed_items:
        return None
    first = run.failures[possibly[0]]
    said = str(first["message"] or "no message").rstrip(".")
    entry = run.possibly_created.get(possibly[0]) or {"RequestId": first["request_id"]}
    return AirflowFailException(
        f"{len(possibly)} of {count} items' creates may have created MPS tasks whose TaskIds are lost, more "
        f"than max_failed_items={max_failed_items}; the first, requests[{possibly[0]}], "
        f"{describe_entry(entry)}, failed with {first['code']}: {said}. A retry would send them "
        "again and may pay twice, so the task fails without Airflow retries; look for those tasks in the "
        f"MPS console (every failure is in the 'failures' XCom). {OPT_IN}"
    )
