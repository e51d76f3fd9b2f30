"""
A local emulator of Tencent Cloud MPS AIGC image generation, for tests, demos and offline work.

Laid out the way moto lays out a service: ``models`` (state and lifecycle), ``knobs`` (timing,
quota and faults), ``validation`` (parameter checks), ``signature`` (TC3-HMAC-SHA256),
``responses`` (the thin HTTP layer), ``exceptions`` (the service's error codes), ``images``
(the generated pictures), ``server`` (uvicorn runner and the ``mps-emulator`` command) and
``pytest_plugin`` (the ``mps_emulator`` / ``mps_conn`` fixtures).  See ``docs/emulator.md``.

The provider's runtime code never imports this package, and it imports nothing from Airflow.
"""

from __future__ import annotations
