from __future__ import annotations

# Refuses an Airflow older than the provider supports, naming both versions.
import airflow_provider_mps.version_compat  # noqa: F401
