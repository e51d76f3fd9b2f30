"""
The review step: what a person is shown, what their answer turns into, and where it cannot run.

The whole loop (a real Airflow, Chromium, the emulator) is ``tests/browser/test_human_review.py``;
on 3.1.8 the matrix answers it through the REST API (``tests/matrix/test_human_review_end_to_end.py``).
"""

from __future__ import annotations

import datetime
import importlib
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import pendulum
import pytest

from airflow_provider_mps.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS
from tests.conftest import EXAMPLE_DAGS, fresh_interpreter_json

needs_hitl = pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS, reason="human-in-the-loop operators need Airflow 3.1+"
)

TASK_IDS = ["2001-aigc-a", None, "2001-aigc-b", "2001-aigc-c"]
IMAGE_URLS = [
    ["https://mps.example/a/0.png"],
    [],
    ["https://mps.example/b/0.png"],
    ["https://mps.example/c/0.png"],
]


@pytest.mark.skipif(AIRFLOW_V_3_1_PLUS, reason="the review step imports on Airflow 3.1+")
def test_importing_the_review_step_before_airflow_3_1_names_the_requirement():
    from airflow.exceptions import AirflowOptionalProviderFeatureException

    with pytest.raises(AirflowOptionalProviderFeatureException) as raised:
        importlib.import_module("airflow_provider_mps.operators.review")

    assert str(raised.value) == (
        "MpsAigcImageReviewOperator needs Apache Airflow 3.1+ and apache-airflow-providers-standard 1.5.0+ "
        "(their human-in-the-loop operators); this environment has Apache Airflow "
        f"{version('apache-airflow')}."
    )


def test_the_rest_of_the_provider_imports_without_the_review_step():
    script = (
        "import json, sys\n"
        "import airflow_provider_mps.operators.mps, airflow_provider_mps.operators.mps_batch\n"
        "import airflow_provider_mps.transfers.mps_to_object_storage, airflow_provider_mps.sensors.mps\n"
        "review = ('.operators.review', '.operators.hitl')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.endswith(review))))\n"
    )

    assert fresh_interpreter_json(script) == []


@needs_hitl
@pytest.mark.parametrize(
    ("airflow_version", "standard", "expected"),
    [
        ("2.11.2", None, "this environment has Apache Airflow 2.11.2."),
        ("3.0.6", "1.4.0", "this environment has Apache Airflow 3.0.6."),
        ("3.1.8", None, "apache-airflow-providers-standard is not installed."),
        ("3.1.8", "1.4.2", "this environment has apache-airflow-providers-standard 1.4.2."),
        ("3.1.8", "1.5.0", None),
        ("3.3.2", "1.21.0", None),
    ],
)
def test_the_requirement_check_names_what_is_missing(airflow_version, standard, expected):
    from airflow_provider_mps.operators.review import hitl_requirement_problem

    needs = (
        "MpsAigcImageReviewOperator needs Apache Airflow 3.1+ and apache-airflow-providers-standard 1.5.0+ "
        "(their human-in-the-loop operators); "
    )
    assert hitl_requirement_problem(airflow_version, standard) == (expected and needs + expected)


@needs_hitl
def test_each_task_of_a_batch_is_one_candidate_and_failed_items_are_left_out():
    from airflow_provider_mps.operators.review import ReviewCandidate, review_candidates

    assert review_candidates(TASK_IDS, IMAGE_URLS) == [
        ReviewCandidate("Candidate 1", "2001-aigc-a", ("https://mps.example/a/0.png",)),
        ReviewCandidate("Candidate 2", "2001-aigc-b", ("https://mps.example/b/0.png",)),
        ReviewCandidate("Candidate 3", "2001-aigc-c", ("https://mps.example/c/0.png",)),
    ]


@needs_hitl
def test_one_task_with_several_images_is_one_candidate_showing_them_all():
    from airflow_provider_mps.operators.review import ReviewCandidate, review_candidates

    urls = ["https://mps.example/a/0.png", "https://mps.example/a/1.png"]

    assert review_candidates("2001-aigc-a", urls) == [
        ReviewCandidate("Candidate 1", "2001-aigc-a", tuple(urls))
    ]


@needs_hitl
@pytest.mark.parametrize(
    ("task_ids", "urls", "message"),
    [
        (
            ["a", "b"],
            [["https://x/0.png"]],
            "Invalid image_urls: must hold one list of image URLs per MPS TaskId; got 1 lists for 2 TaskIds "
            "(['a', 'b']).",
        ),
        (["a"], [[]], "Invalid image_urls for MPS task a: must be a non-empty list of URLs, got []."),
        (
            [None, None],
            [[], []],
            "Invalid mps_task_ids [None, None]: no MPS task with images is left to review.",
        ),
    ],
)
def test_task_ids_and_urls_that_do_not_match_are_refused_naming_them(task_ids, urls, message):
    from airflow_provider_mps.operators.review import review_candidates

    with pytest.raises(ValueError, match="^Invalid") as raised:
        review_candidates(task_ids, urls)

    assert str(raised.value) == message


@needs_hitl
def test_the_body_shows_the_model_the_prompt_as_text_every_image_and_the_lifetime():
    from airflow_provider_mps.operators.review import review_body, review_candidates

    prompt = "A teapot ![x](https://evil.example/t.png) with ``` fences"
    body = review_body(
        review_candidates(TASK_IDS, IMAGE_URLS)[:2],
        prompt=prompt,
        model_name="GEM",
        response_timeout=timedelta(hours=8),
        failed_items=1,
    )

    assert body == "\n".join(
        [
            "**Model:** ` GEM `",
            "",
            "**Prompt:**",
            "",
            f"````text\n{prompt}\n````",
            "",
            "Answer within 8 hours of this request: MPS deletes the images 12 hours after making them, "
            "and the chosen ones are saved only after your answer.",
            "",
            "1 more requested candidate(s) failed and are not shown.",
            "",
            "### Candidate 1",
            "",
            "MPS TaskId ` 2001-aigc-a `",
            "",
            "![Candidate 1, image 1](<https://mps.example/a/0.png>)",
            "",
            "### Candidate 2",
            "",
            "MPS TaskId ` 2001-aigc-b `",
            "",
            "![Candidate 2, image 1](<https://mps.example/b/0.png>)",
            "",
            "Choose the candidates to keep: only those are saved. To reject them all, choose **Reject all** "
            "(alone) and write a revised prompt: a new run draws it.",
        ]
    )


@needs_hitl
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://mps.example/a b(1).png", "![c](<https://mps.example/a%20b%281%29.png>)"),
        ("javascript:alert(1)", "Image not shown (not an http(s) URL): ` javascript:alert(1) `"),
    ],
)
def test_an_image_url_is_escaped_or_shown_as_text(url, shown):
    from airflow_provider_mps.operators.review import _image

    assert _image("c", url) == shown


def _review(**kwargs: Any) -> Any:
    from airflow_provider_mps.operators.review import MpsAigcImageReviewOperator

    arguments = {
        "task_id": "review",
        "mps_task_ids": TASK_IDS,
        "image_urls": IMAGE_URLS,
        "prompt": "A teapot",
    }
    return MpsAigcImageReviewOperator(**{**arguments, **kwargs})


@needs_hitl
@pytest.mark.parametrize("timeout", [None, timedelta(hours=12), timedelta(0), 3600])
def test_a_response_timeout_the_images_may_not_outlive_is_refused(timeout):
    with pytest.raises(ValueError, match="^Invalid") as raised:
        _review(response_timeout=timeout)

    assert str(raised.value) == (
        f"Invalid response_timeout {timeout!r}: must be a timedelta above zero and at most 11:00:00 "
        "(MPS deletes the images 12 hours after making them)."
    )


@needs_hitl
def test_options_and_body_are_the_operators_own():
    with pytest.raises(ValueError, match="^MpsAigcImageReviewOperator sets body, options itself"):
        _review(options=["A"], body="text")


@needs_hitl
def test_the_form_asks_for_the_revised_prompt_only():
    review = _review()

    assert (review.multiple, review.response_timeout, list(review.serialized_params)) == (
        True,
        timedelta(hours=8),
        ["revised_prompt"],
    )


class _TaskInstance:
    """Records the XComs an operator pushes."""

    def __init__(self) -> None:
        self.id = "0199-ti"
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@needs_hitl
def test_execute_asks_with_one_option_per_candidate_and_waits(monkeypatch):
    from airflow.providers.standard.operators import hitl

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **detail: asked.append(detail))
    ti = _TaskInstance()
    # Airflow 3.3 parks the task awaiting input; 3.1 and 3.2 defer it to the HITL trigger.
    if AIRFLOW_V_3_3_PLUS:
        from airflow.sdk.exceptions import TaskAwaitingInput as Waiting
    else:
        from airflow.providers.common.compat.sdk import TaskDeferred as Waiting

    with pytest.raises(Waiting):
        _review(model_name="GEM").execute({"task_instance": ti, "ti": ti})

    [detail] = asked
    assert (detail["subject"], detail["options"], detail["multiple"], detail["defaults"]) == (
        "Keep which of 3 generated images?",
        ["Candidate 1", "Candidate 2", "Candidate 3", "Reject all"],
        True,
        None,
    )
    assert detail["body"].count("![Candidate") == 3
    assert list(detail["params"]) == ["revised_prompt"]


def _answer(chosen: list[str], revised: str | None = None) -> dict[str, Any]:
    return {
        "chosen_options": chosen,
        "params_input": {"revised_prompt": revised},
        "responded_at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "responded_by_user": {"id": "admin", "name": "admin"},
    }


@needs_hitl
def test_keeping_two_of_three_returns_exactly_their_task_ids():
    ti = _TaskInstance()

    chosen = _review().execute_complete({"ti": ti}, _answer(["Candidate 3", "Candidate 1"], "ignored"))

    assert chosen == ["2001-aigc-a", "2001-aigc-c"]
    assert ti.pushed == {
        "chosen_options": ["Candidate 3", "Candidate 1"],
        "params_input": {"revised_prompt": "ignored"},
        "responded_by_user": {"id": "admin", "name": "admin"},
        "revised_prompt": None,
    }


@needs_hitl
@pytest.mark.parametrize(
    ("chosen", "revised", "expected_prompt"),
    [
        (["Reject all"], "  A teapot, top view \n", "A teapot, top view"),
        (["Reject all"], None, None),
        (["Candidate 2", "Reject all"], "A cup", "A cup"),
    ],
)
def test_rejecting_keeps_nothing_and_passes_on_the_revised_prompt(chosen, revised, expected_prompt):
    ti = _TaskInstance()

    kept = _review().execute_complete({"ti": ti}, _answer(chosen, revised))

    assert (kept, ti.pushed["revised_prompt"]) == ([], expected_prompt)


@needs_hitl
def test_an_option_that_was_never_offered_fails_the_review():
    with pytest.raises(ValueError, match=r"^Responses \{'Candidate 4'\} not in"):
        _review().execute_complete({"ti": _TaskInstance()}, _answer(["Candidate 4"]))


@needs_hitl
def test_the_example_waits_for_the_review_then_saves_the_chosen_or_starts_again(airflow_home):
    from importlib import import_module

    from airflow_provider_mps.version_compat import AIRFLOW_V_3_2_PLUS

    module = "airflow.dag_processing.dagbag" if AIRFLOW_V_3_2_PLUS else "airflow.models.dagbag"
    bag = import_module(module).DagBag(dag_folder=str(EXAMPLE_DAGS / "example_mps_human_review.py"))
    dag = bag.dags["example_mps_human_review"]

    assert bag.import_errors == {}
    assert {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks} == {
        "candidate_requests": ["create_candidates"],
        "create_candidates": ["review"],
        "review": ["revised_request", "save_chosen"],
        "save_chosen": [],
        "revised_request": ["regenerate"],
        "regenerate": [],
    }
    assert (sorted(dag.tags), bool(dag.doc_md), dag.params.validate()) == (
        ["example", "mps", "tencentcloud"],
        True,
        {
            "prompt": "A ceramic teapot on a linen tablecloth, studio light, product photo",
            "model_name": "GEM",
            "candidates": 3,
        },
    )
    assert [outlet.uri for outlet in dag.get_task("save_chosen").partial_kwargs["outlets"]] == [
        "mps://example_mps_human_review/approved"
    ]
    assert pendulum.instance(dag.start_date) == pendulum.datetime(2025, 1, 1, tz="UTC")
