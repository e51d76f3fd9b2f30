"""The control of the real-triggerer test: a badly-written trigger that blocks the event loop."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class BlockingTrigger(BaseTrigger):
    """
    Sleep ``seconds`` on the event loop's thread (what a trigger must never do), then wait for ever.

    :param seconds: how long to hold the loop.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        time.sleep(self.seconds)
        await asyncio.Event().wait()
        yield TriggerEvent({})  # never reached
