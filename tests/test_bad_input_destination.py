"""A destination the transfer cannot use is refused before the service is polled."""

from __future__ import annotations

import datetime
import re

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator
from tests._bad_input import RETRIES, FailureRecorder
from tests.operators._airflow_records import task_states
from tests.operators._dag_runs import run_dag


@pytest.mark.parametrize("destination", ["parent_is_a_file", "unknown_scheme"])
def test_unusable_destination_is_refused_before_the_service_is_polled(
    airflow_home, mps_conn, tmp_path, destination
):
    from airflow_provider_mps.hooks.mps import MpsHook

    mps_conn.configure(wait_seconds=0, run_seconds=0)
    mps_task_id = MpsHook().create_aigc_image_task(prompt="a lighthouse")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    url = {"parent_is_a_file": f"file://{a_file}/images", "unknown_scheme": "nosuch://bucket/images"}[
        destination
    ]
    recorder = FailureRecorder()
    with DAG(
        f"bad_input_destination_{destination}",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        default_args={"retries": RETRIES, "retry_delay": datetime.timedelta(0)},
    ) as dag:
        MpsAigcImagesToObjectStorageOperator(task_id="save", mps_task_id=mps_task_id, destination=url)

    with recorder.listening():
        run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("save", -1): ("failed", 1)}
    [failure] = recorder.failures
    shown = str(MpsInvalidParameterError("destination", "", url))[: -len(": ")]
    if destination == "unknown_scheme":
        # Airflow's own reason closes the message: its wording differs by Airflow line.
        from tests.transfers.test_mps_to_object_storage import unknown_scheme_reason

        reason = unknown_scheme_reason(url)
        assert (failure.error_type, failure.message) == (
            "MpsInvalidParameterError",
            f"{shown}: must be an object storage URL whose scheme has a filesystem in Airflow (file://, "
            f"or s3://, gs://, ... with their provider installed); {reason}.",
        )
    else:
        # The folder below the destination holds the DAG id, the run id and the TaskId.
        assert failure.error_type == "MpsInvalidParameterError"
        assert re.fullmatch(
            re.escape(
                f"{shown}: must be a local folder that can be created and written to; creating "
                f"{a_file}/images/bad_input_destination_parent_is_a_file/"
            )
            + r"[^/]+/"
            + re.escape(f"{mps_task_id} failed: Not a directory."),
            failure.message,
        ), failure.message
    # The task was created by the test itself; the transfer never polled it.
    assert [request["Action"] for request in mps_conn.requests()] == ["CreateAigcImageTask"]
