"""Benchmarks of the provider against the MPS emulator at the real quota; run ``make bench``."""

from __future__ import annotations
