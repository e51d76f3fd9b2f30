"""How a prompt is quoted in logs, errors and records: its start only, never the whole text."""

from __future__ import annotations

#: Characters of the prompt kept in a record and quoted in messages.
PROMPT_EXCERPT_LENGTH = 60


def prompt_excerpt(prompt: object) -> str:
    """Quote the start of ``prompt`` (at most :data:`PROMPT_EXCERPT_LENGTH` characters)."""
    if not isinstance(prompt, str) or not prompt:
        return "(none)"
    if len(prompt) > PROMPT_EXCERPT_LENGTH:
        return repr(prompt[: PROMPT_EXCERPT_LENGTH - 3] + "...")
    return repr(prompt)
