"""Pytest plugin exposing the ``mps_emulator`` fixture (placeholder until the emulator lands)."""

from __future__ import annotations
