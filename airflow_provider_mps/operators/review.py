"""
A person reviews generated images in the Airflow UI, keeps some and rejects the rest.

:class:`MpsAigcImageReviewOperator` goes between the create operators and the transfer: it shows
every candidate image inline under Browse > Required Actions, with the prompt, the model and the
MPS TaskIds, and waits for a person to choose which candidates to keep, or to reject them all with
a revised prompt.  It is a human-in-the-loop operator of ``apache-airflow-providers-standard``
(``HITLOperator``), so it needs Apache Airflow 3.1+ and that provider 1.5.0+; importing this module
on anything older raises ``AirflowOptionalProviderFeatureException`` naming both requirements.
The rest of the provider never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException, Param
from packaging.version import Version

from airflow_provider_mps.version_compat import AIRFLOW_V_3_1_PLUS

#: The oldest ``apache-airflow-providers-standard`` with the human-in-the-loop operators.
MIN_STANDARD_PROVIDER_VERSION = "1.5.0"


def hitl_requirement_problem(airflow_version: str, standard_provider_version: str | None) -> str | None:
    """
    Say why the review step cannot run with these versions, or return ``None`` when it can.

    :param airflow_version: the installed Apache Airflow version.
    :param standard_provider_version: the installed ``apache-airflow-providers-standard``
        version, ``None`` when it is not installed.
    """
    needs = (
        "MpsAigcImageReviewOperator needs Apache Airflow 3.1+ and apache-airflow-providers-standard "
        f"{MIN_STANDARD_PROVIDER_VERSION}+ (their human-in-the-loop operators)"
    )
    if Version(airflow_version).release[:2] < (3, 1):
        return f"{needs}; this environment has Apache Airflow {airflow_version}."
    if standard_provider_version is None:
        return f"{needs}; apache-airflow-providers-standard is not installed."
    if Version(standard_provider_version) < Version(MIN_STANDARD_PROVIDER_VERSION):
        return f"{needs}; this environment has apache-airflow-providers-standard {standard_provider_version}."
    return None


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


#: Why the review step cannot run here (``None``: it can); decided once, at import.
REQUIREMENT_PROBLEM = hitl_requirement_problem(
    version("apache-airflow"), _installed("apache-airflow-providers-standard")
)
if REQUIREMENT_PROBLEM is not None or not AIRFLOW_V_3_1_PLUS:
    raise AirflowOptionalProviderFeatureException(REQUIREMENT_PROBLEM)

from airflow.providers.standard.operators.hitl import HITLOperator  # noqa: E402
from airflow.sdk.definitions.param import ParamsDict  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

#: MPS deletes generated images 12 hours after making them.
IMAGE_LIFETIME = timedelta(hours=12)
#: The longest ``response_timeout`` allowed: an hour of the images' lifetime is left for making
#: them before the review and for saving the chosen ones after it.
MAX_RESPONSE_TIMEOUT = timedelta(hours=11)
#: How long a person has to answer unless told otherwise.
DEFAULT_RESPONSE_TIMEOUT = timedelta(hours=8)

#: The option that rejects every candidate, whatever else is chosen with it.
REJECT_OPTION = "Reject all"
#: The form field of the revised prompt.
REVISED_PROMPT_PARAM = "revised_prompt"
#: XCom keys of the person's answer, as Airflow's human-in-the-loop operators name its parts.
ANSWER_XCOM_KEYS = ("chosen_options", "params_input", "responded_by_user")
#: XCom key of the revised prompt of a rejection (``None`` when approved or left empty).
REVISED_PROMPT_XCOM_KEY = "revised_prompt"

#: Longest revised prompt the form takes (the service's limit on a prompt).
_MAX_PROMPT_CHARACTERS = 1000
#: Arguments of ``HITLOperator`` this operator sets itself.
_FIXED_ARGUMENTS = ("options", "body", "multiple", "defaults")


@dataclass(frozen=True)
class ReviewCandidate:
    """
    One candidate of a review: an MPS task and the images it made.

    :param option: the label a person chooses, e.g. ``Candidate 1``.
    :param mps_task_id: the MPS TaskId; choosing the candidate saves every image of this task.
    :param image_urls: the task's image URLs, shown inline.
    """

    option: str
    mps_task_id: str
    image_urls: tuple[str, ...]


def review_candidates(
    mps_task_ids: str | Sequence[str | None], image_urls: Sequence[Any]
) -> list[ReviewCandidate]:
    """
    Pair each MPS TaskId with its image URLs, one candidate per task, skipping failed batch items.

    :param mps_task_ids: one TaskId (``create.output`` of the single operator) or a list of them
        (the batch operator's ``return_value``, ``None`` for a failed item; or mapped creates).
    :param image_urls: the ``image_urls`` XCom: a list of URLs for one TaskId, or one list of URLs
        per TaskId (the batch operator's, or mapped creates').
    :raises ValueError: naming the argument when the two do not match or no candidate is left.
    """
    task_ids = [mps_task_ids] if isinstance(mps_task_ids, str) else list(mps_task_ids or [])
    urls = list(image_urls or [])
    if len(task_ids) == 1 and urls and all(isinstance(url, str) for url in urls):
        urls = [urls]
    if len(urls) != len(task_ids):
        raise ValueError(
            f"Invalid image_urls: must hold one list of image URLs per MPS TaskId; got {len(urls)} "
            f"lists for {len(task_ids)} TaskIds ({task_ids!r})."
        )
    candidates: list[ReviewCandidate] = []
    for task_id, task_urls in zip(task_ids, urls, strict=True):
        if not task_id:
            continue  # a failed batch item: nothing to show
        if isinstance(task_urls, str) or not task_urls:
            raise ValueError(
                f"Invalid image_urls for MPS task {task_id}: must be a non-empty list of URLs, "
                f"got {task_urls!r}."
            )
        candidates.append(ReviewCandidate(f"Candidate {len(candidates) + 1}", task_id, tuple(task_urls)))
    if not candidates:
        raise ValueError(f"Invalid mps_task_ids {task_ids!r}: no MPS task with images is left to review.")
    return candidates


def _longest_backtick_run(text: str) -> int:
    """How many backticks in a row ``text`` holds at the most."""
    longest = 0
    current = 0
    for character in text:
        current = current + 1 if character == "`" else 0
        longest = max(longest, current)
    return longest


def _code(text: str) -> str:
    """``text`` as Markdown inline code, whatever backticks it holds."""
    fence = "`" * (_longest_backtick_run(text) + 1)
    return f"{fence} {text} {fence}"


def _code_block(text: str) -> str:
    """``text`` as a fenced Markdown code block: a prompt is shown, never interpreted."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}text\n{text}\n{fence}"


def _image(alt: str, url: str) -> str:
    """A Markdown image of ``url``; a URL that is not http(s) is shown as text, never loaded."""
    if not url.lower().startswith(("https://", "http://")):
        return f"Image not shown (not an http(s) URL): {_code(url)}"
    safe = (
        url.replace(" ", "%20")
        .replace("(", "%28")
        .replace(")", "%29")
        .replace("<", "%3C")
        .replace(">", "%3E")
    )
    return f"![{alt}](<{safe}>)"


def review_body(
    candidates: Sequence[ReviewCandidate],
    *,
    prompt: str | None,
    model_name: str | None,
    response_timeout: timedelta,
    failed_items: int = 0,
) -> str:
    """
    The Markdown a person reads in Required Actions: the request, every candidate inline, the rules.

    :param candidates: what to show, from :func:`review_candidates`.
    :param prompt: the prompt the candidates were drawn from.
    :param model_name: the MPS model that drew them.
    :param response_timeout: how long the person has to answer.
    :param failed_items: how many requested candidates failed and are not shown.
    """
    hours = response_timeout.total_seconds() / 3600
    lines = [
        f"**Model:** {_code(model_name) if model_name else 'the service default'}",
        "",
        "**Prompt:**",
        "",
        _code_block(prompt or "(no prompt: drawn from reference images)"),
        "",
        f"Answer within {hours:g} hours of this request: MPS deletes the images "
        f"{IMAGE_LIFETIME.total_seconds() / 3600:g} hours after making them, and the chosen ones are "
        "saved only after your answer.",
        "",
    ]
    if failed_items:
        lines += [f"{failed_items} more requested candidate(s) failed and are not shown.", ""]
    for candidate in candidates:
        lines += [f"### {candidate.option}", "", f"MPS TaskId {_code(candidate.mps_task_id)}", ""]
        lines += [
            _image(f"{candidate.option}, image {index + 1}", url)
            for index, url in enumerate(candidate.image_urls)
        ]
        lines.append("")
    lines.append(
        "Choose the candidates to keep: only those are saved. To reject them all, choose "
        f"**{REJECT_OPTION}** (alone) and write a revised prompt: a new run draws it."
    )
    return "\n".join(lines)


class MpsAigcImageReviewOperator(HITLOperator):
    """
    Wait for a person to keep some of the generated candidates, or reject them all with a new prompt.

    Each MPS task is one candidate (option ``Candidate 1``, ``Candidate 2``, ...), shown with its
    images inline in Browse > Required Actions, with the prompt, the model and the TaskIds; a
    person chooses several, or :data:`REJECT_OPTION` with a revised prompt.  Create one task per
    candidate (``MpsCreateAigcImageBatchOperator`` with ``output_image_count=1``) so that choosing a
    candidate keeps exactly its image: the transfer saves every image of a TaskId.

    XComs: ``return_value`` is the list of the chosen candidates' TaskIds, in candidate order, empty
    when rejected: expand the transfer over ``review.output`` to save exactly those.  The person's
    answer is under the keys ``chosen_options``, ``params_input`` and ``responded_by_user``, and the
    stripped revised prompt of a rejection under ``revised_prompt`` (``None`` when approved or left
    empty).  :data:`REJECT_OPTION` wins over any candidate chosen with it: nothing unapproved is kept.

    MPS deletes the images 12 hours after making them, so ``response_timeout`` is required and at
    most :data:`MAX_RESPONSE_TIMEOUT`; without an answer by then the task fails and nothing is saved.

    :param mps_task_ids: the TaskIds to review (templated): ``create.output`` of the batch operator,
        of mapped creates, or of one create.
    :param image_urls: their image URLs (templated): the ``image_urls`` XCom of the same operator.
    :param prompt: the prompt they were drawn from, shown to the person (templated).
    :param model_name: the model that drew them, shown to the person (templated).
    :param subject: the headline in Required Actions (templated); by default it names the count.
    :param response_timeout: how long a person has to answer, at most 11 hours.
    """

    template_fields: Sequence[str] = ("subject", "mps_task_ids", "image_urls", "prompt", "model_name")
    template_fields_renderers = {"mps_task_ids": "json", "image_urls": "json"}
    ui_color = "#fff4e0"

    def __init__(
        self,
        *,
        mps_task_ids: str | Sequence[str | None],
        image_urls: Sequence[Any] | str,
        prompt: str | None = None,
        model_name: str | None = None,
        subject: str | None = None,
        response_timeout: timedelta | None = DEFAULT_RESPONSE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        given = sorted(set(_FIXED_ARGUMENTS) & set(kwargs))
        if given:
            raise ValueError(f"MpsAigcImageReviewOperator sets {', '.join(given)} itself; do not pass them.")
        if not isinstance(response_timeout, timedelta) or not (
            timedelta(0) < response_timeout <= MAX_RESPONSE_TIMEOUT
        ):
            raise ValueError(
                f"Invalid response_timeout {response_timeout!r}: must be a timedelta above zero and at most "
                f"{MAX_RESPONSE_TIMEOUT} (MPS deletes the images 12 hours after making them)."
            )
        # The DAG's params reach the templates through the context; the form asks only for this one.
        kwargs.pop("params", None)
        super().__init__(
            subject=subject or "Review the generated images",
            options=[REJECT_OPTION],  # the candidates are added when the task runs
            multiple=True,
            response_timeout=response_timeout,
            **kwargs,
        )
        self.params = ParamsDict(
            {
                REVISED_PROMPT_PARAM: Param(
                    None,
                    title="Revised prompt",
                    description=f"Only with {REJECT_OPTION}: the prompt a new run draws. Empty: no new run.",
                    type=["null", "string"],
                    maxLength=_MAX_PROMPT_CHARACTERS,
                )
            }
        )
        self.subject_given = subject is not None
        self.mps_task_ids = mps_task_ids
        self.image_urls = image_urls
        self.prompt = prompt
        self.model_name = model_name

    def candidates(self) -> list[ReviewCandidate]:
        """The candidates of the rendered ``mps_task_ids`` and ``image_urls``; sets the options."""
        candidates = review_candidates(self.mps_task_ids, self._rendered_image_urls())
        self.options = [candidate.option for candidate in candidates] + [REJECT_OPTION]
        return candidates

    def _rendered_image_urls(self) -> Sequence[Any]:
        if isinstance(self.image_urls, str):
            import json

            return json.loads(self.image_urls)
        return self.image_urls

    def execute(self, context: Context) -> Any:
        """Show the candidates in Required Actions and wait for the person's answer."""
        candidates = self.candidates()
        task_ids = [self.mps_task_ids] if isinstance(self.mps_task_ids, str) else list(self.mps_task_ids)
        if not self.subject_given:
            self.subject = f"Keep which of {len(candidates)} generated images?"
        self.body = review_body(
            candidates,
            prompt=self.prompt,
            model_name=self.model_name,
            response_timeout=self.response_timeout or DEFAULT_RESPONSE_TIMEOUT,
            failed_items=len(task_ids) - len(candidates),
        )
        self.log.info(
            "Asking for a review of %s candidates (MPS tasks %s) within %s",
            len(candidates),
            ", ".join(candidate.mps_task_id for candidate in candidates),
            self.response_timeout,
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        """Check the answer, push it and the revised prompt; return the chosen candidates' TaskIds."""
        candidates = self.candidates()  # the options the answer is checked against
        answer = super().execute_complete(context=context, event=event)
        chosen = answer["chosen_options"]
        revised = ((answer["params_input"] or {}).get(REVISED_PROMPT_PARAM) or "").strip() or None
        if REJECT_OPTION in chosen:
            chosen_task_ids: list[str] = []
            if len(chosen) > 1:
                self.log.warning("%s was chosen with %s: every candidate is rejected", REJECT_OPTION, chosen)
            self.log.info("Rejected every candidate; revised prompt: %r", revised)
        else:
            chosen_task_ids = [c.mps_task_id for c in candidates if c.option in chosen]
            revised = None
            self.log.info(
                "Kept %s of %s candidates: MPS tasks %s",
                len(chosen_task_ids),
                len(candidates),
                chosen_task_ids,
            )
        for key in ANSWER_XCOM_KEYS:
            context["ti"].xcom_push(key=key, value=answer[key])
        context["ti"].xcom_push(key=REVISED_PROMPT_XCOM_KEY, value=revised)
        return chosen_task_ids
