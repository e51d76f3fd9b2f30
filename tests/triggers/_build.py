"""Build a polling trigger for a test: the default connection, a short poll and a near end time."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_mps import DEFAULT_CONN_ID


def polling_trigger(cls: type, *, poll_interval: float = 0.05, within: float = 10.0, **kwargs: Any) -> Any:
    """
    Return ``cls(**kwargs)`` polling every ``poll_interval`` s and giving up ``within`` s from now.

    :param cls: ``MpsAigcImageTaskTrigger`` or ``MpsAigcImageBatchTrigger``.
    :param kwargs: the TaskId argument and any other of the trigger's arguments.
    """
    kwargs.setdefault("mps_conn_id", DEFAULT_CONN_ID)
    return cls(poll_interval=poll_interval, end_time=time.time() + within, **kwargs)
