"""Counting requests in time windows, for the tests that hold the quota per second."""

from __future__ import annotations


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps inside any half-open interval ``[t, t + window)``."""
    times = sorted(times)
    most, start = 0, 0
    for end, time_ in enumerate(times):
        while time_ - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
