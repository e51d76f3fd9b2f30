"""Apache Airflow provider for Tencent Cloud MPS AIGC image generation."""

from __future__ import annotations

__version__ = "0.1.0"
