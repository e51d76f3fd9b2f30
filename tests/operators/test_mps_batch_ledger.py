"""MpsCreateAigcImageBatchOperator on a retry: the ledger of created items, re-attaching, resending."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.operators._mps_batch_submit import LEDGER_CHUNK_SIZE
from airflow_provider_mps.operators._reattach import fingerprint
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from tests.operators._batch import CREATE, created_by_prompt, creates, make_context, make_operator
from tests.operators.conftest import DictTaskStateStore

pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


# -- retries ----------------------------------------------------------------------------------


def test_a_retry_reattaches_to_created_items_and_never_resends_a_possibly_created_one(mps_conn):
    store = DictTaskStateStore()
    prompts = [f"product {n}" for n in range(5)]
    mps_conn.configure(error_code="InternalError", error_burst={CREATE: 1})
    operator = make_operator(requests=prompts)

    # InternalError may mean the task was created: no retry could succeed without resending it.
    with pytest.raises(AirflowFailException) as first:
        operator.execute(make_context(store))

    first_try = created_by_prompt(mps_conn)
    assert len(first_try) == 4
    [lost] = [prompt for prompt in prompts if prompt not in first_try]
    index = prompts.index(lost)
    assert str(first.value).startswith(
        f"1 of 5 items' creates may have created MPS tasks whose TaskIds are lost, more than "
        f"max_failed_items=0; the first, requests[{index}], sent around "
    )
    assert str(first.value).endswith("set resubmit_on_retry=True on the operator.")
    # A clear runs it again: the item is still not resent, the others re-attach.
    context = make_context(store, try_number=2)

    with pytest.raises(AirflowFailException):
        make_operator(requests=prompts).execute(context)

    assert created_by_prompt(mps_conn) == first_try
    assert len(creates(mps_conn)) == 5
    assert context["ti"].xcoms["return_value"] == [first_try.get(prompt) for prompt in prompts]
    assert context["ti"].xcoms["failures"] == [
        {
            "index": index,
            "stage": "create",
            "code": "InternalError",
            "message": "An earlier try's create may have created a task whose TaskId is lost "
            "(Injected by the emulator: InternalError.); it is not resent, to avoid a duplicate task.",
            "request_id": context["ti"].xcoms["failures"][0]["request_id"],
            "mps_task_id": None,
            "possibly_created": True,
        }
    ]


def test_resubmit_on_retry_lets_the_retry_resend_a_possibly_created_item_counting_it(mps_conn, task_logs):
    store = DictTaskStateStore()
    prompts = [f"product {n}" for n in range(3)]
    mps_conn.configure(error_code="InternalError", error_burst={CREATE: 1})

    # Retryable with the opt-in: the failure is an ordinary MpsError.
    with pytest.raises(MpsError) as first:
        make_operator(requests=prompts, resubmit_on_retry=True).execute(make_context(store))

    assert not isinstance(first.value, AirflowFailException)
    [lost] = [prompt for prompt in prompts if prompt not in created_by_prompt(mps_conn)]
    index = prompts.index(lost)

    task_ids = make_operator(requests=prompts, resubmit_on_retry=True).execute(
        make_context(store, try_number=2)
    )

    assert sorted(created_by_prompt(mps_conn)) == prompts
    assert task_ids == [created_by_prompt(mps_conn)[prompt] for prompt in prompts]
    logs = task_logs()
    assert [line.split(" of this request")[0] for line in logs if "Possible duplicate" in line] == [
        f"warning: requests[{index}]: Possible duplicate 1"
    ]
    [resent] = [line for line in logs if "sending it again" in line]
    assert resent.startswith(
        f"warning: requests[{index}]: sending it again, as resubmit_on_retry=True allows, although 1 earlier "
        "create(s) of it may have created a task (the latest sent around "
    )


def test_a_retry_sends_items_that_certainly_failed_and_reattaches_changed_lists_only_where_unchanged(
    mps_conn,
):
    store = DictTaskStateStore()
    first = ["a cat", {"prompt": "a dog", "model_name": "Seedream"}, "a bird"]

    with pytest.raises(AirflowFailException):
        make_operator(requests=first).execute(make_context(store))

    first_try = created_by_prompt(mps_conn)
    # The retry renders a fixed item 1 and a changed item 2: both are sent, item 0 re-attaches.
    second = ["a cat", {"prompt": "a dog", "model_name": "GEM"}, "a bird at night"]
    context = make_context(store, try_number=2)

    task_ids = make_operator(requests=second).execute(context)

    by_prompt = created_by_prompt(mps_conn)
    assert task_ids == [first_try["a cat"], by_prompt["a dog"], by_prompt["a bird at night"]]
    assert len(mps_conn.tasks()) == 4


def test_the_ledger_is_written_as_each_item_is_created_in_chunks(mps_conn):
    writes: list[tuple[str, dict[str, Any]]] = []

    class RecordingStore(DictTaskStateStore):
        def set(self, key: str, value: Any, *, retention: Any = None) -> None:
            writes.append((key, json.loads(json.dumps(value))))
            super().set(key, value)

    count = LEDGER_CHUNK_SIZE + 5
    store = RecordingStore()
    mps_conn.configure(rate_limit=0)
    context = make_context(store)

    task_ids = make_operator(requests=[f"item {n}" for n in range(count)], rate_limit=1000).execute(context)

    # Each item is written before its create leaves (being sent) and once it returns (its TaskId),
    # each write rewriting only that item's chunk; a write carries every change made while the one
    # before it was under way.  Then ResumableJobMixin stores the batch's summary.
    assert count + 1 <= len(writes) <= 2 * count + 1
    assert writes[-1] == ("mps_aigc_image_batch.submitted", {"Items": count})
    assert sorted({key for key, _ in writes[:-1]}) == ["mps_aigc_image_batch.0", "mps_aigc_image_batch.1"]
    for n in (0, 57, LEDGER_CHUNK_SIZE + 4):
        seen = [value[str(n)] for key, value in writes[:-1] if str(n) in value]
        assert (seen[0]["Sending"], seen[0]["Code"]) == (True, "ClientError.TryEnded")
        assert seen[-1]["TaskId"] == task_ids[n]
    assert sorted([value for key, value in writes if key.endswith(".0")][-1], key=int) == [
        str(n) for n in range(LEDGER_CHUNK_SIZE)
    ]
    last_chunk = [value for key, value in writes if key.endswith(".1")][-1]
    assert sorted(last_chunk, key=int) == [str(n) for n in range(LEDGER_CHUNK_SIZE, count)]
    from airflow_provider_mps.validation import build_aigc_image_request

    assert last_chunk["104"] == {
        "f": fingerprint(build_aigc_image_request({"prompt": "item 104"})),
        "TaskId": task_ids[104],
        "RequestId": context["ti"].xcoms["request_ids"][104],
    }


def test_a_retry_whose_every_item_has_a_task_waits_for_them_without_sending_a_create(mps_conn, task_logs):
    mps_conn.configure(run_seconds=0.5)
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog"]

    class DiesAfterSubmitting(MpsCreateAigcImageBatchOperator):
        def poll_until_complete(self, external_id: Any, context: Any) -> None:
            raise RuntimeError("Simulated worker loss after every item was created.")

    with pytest.raises(RuntimeError):
        DiesAfterSubmitting(task_id="create_batch", requests=prompts, wait_for_completion=True).execute(
            make_context(store)
        )

    first_try = created_by_prompt(mps_conn)
    assert store.values["mps_aigc_image_batch.submitted"] == {"Items": 2}
    context = make_context(store, try_number=2)

    task_ids = make_operator(requests=prompts, wait_for_completion=True).execute(context)

    assert task_ids == [first_try["a cat"], first_try["a dog"]]
    assert len(creates(mps_conn)) == 2
    assert context["ti"].xcoms["image_urls"] == [[f"{mps_conn.endpoint}/images/{t}/0.png"] for t in task_ids]
    # ResumableJobMixin re-attached to the batch: nothing to create, so no submission at all.
    assert [line for line in task_logs() if "earlier try" in line or "existing job" in line] == [
        "info: Re-attached to 2 MPS task(s) created by an earlier try; 0 item(s) may have been created by "
        "it and are not resent, 0 are sent again.",
        "info: Reconnecting to existing job",
    ]


def test_durable_false_keeps_no_record_of_the_batch(mps_conn):
    store = DictTaskStateStore()
    mps_conn.configure(error_code="InvalidParameterValue", error_burst={CREATE: 1})

    with pytest.raises(AirflowFailException):
        make_operator(requests=["a cat", "a dog"], durable=False).execute(make_context(store))

    assert len(mps_conn.tasks()) == 1
    assert store.values == {}


class Killed(BaseException):
    """What the task runner raises in the main thread when the task is killed (not an Exception)."""


class DiesAtTheFirstTaskId(list):
    """``BatchRun.task_ids`` whose first write kills the main thread, as SIGTERM would mid-submission."""

    def __setitem__(self, index: Any, value: Any) -> None:
        raise Killed("Simulated kill while creates are in flight.")


def test_a_batch_killed_mid_submission_keeps_every_task_id_in_flight_in_its_ledger(mps_conn):
    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch import BatchRun
    from airflow_provider_mps.operators._mps_batch_submit import BatchLedger, submit_batch
    from airflow_provider_mps.utils.rate_limit import RateLimiter
    from airflow_provider_mps.validation import build_aigc_image_request

    mps_conn.configure(latency_seconds={CREATE: 0.2})
    requests = {index: build_aigc_image_request({"prompt": f"item {index}"}) for index in range(6)}
    fingerprints = [fingerprint(request) for request in requests.values()]
    store = DictTaskStateStore()
    hook = MpsHook(retry_limit=0)
    run = BatchRun(task_ids=DiesAtTheFirstTaskId([None] * 6), request_ids=[None] * 6)

    with pytest.raises(Killed):
        submit_batch(
            hook,
            RateLimiter(1000),
            requests,
            fingerprints,
            BatchLedger(store, 6),
            run,
            logging.getLogger(__name__),
        )

    # Every create the service accepted, in flight when the main thread died, is in the ledger.
    created = {task["Request"]["Prompt"]: task["TaskId"] for task in mps_conn.tasks()}
    ledger = store.values["mps_aigc_image_batch.0"]
    assert len(created) >= 1
    assert {
        f"item {index}": entry["TaskId"] for index, entry in ((int(i), e) for i, e in ledger.items())
    } == created


def test_a_clear_of_a_successful_batch_returns_the_same_tasks_without_paying_again(mps_conn):
    # [state_store] clear_on_success left at its default (False): the ledger outlives the success.
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog"]
    first = make_operator(requests=prompts).execute(make_context(store))

    again = make_operator(requests=prompts).execute(make_context(store, try_number=2))

    assert again == first
    assert len(creates(mps_conn)) == 2
