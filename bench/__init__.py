"""Benchmarks of the provider against the MPS emulator at the real quota; run ``make bench``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its home when first imported, and a benchmark module may import the provider (and
# so Airflow) before anything else: the package sets it, so no benchmark ever touches ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "mps-bench-airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
