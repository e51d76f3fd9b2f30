from __future__ import annotations

import pytest

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.utils.task_id import validate_mps_task_id


def test_task_id_is_returned_without_surrounding_whitespace():
    assert validate_mps_task_id("  2600000-AigcImage-abc\n") == "2600000-AigcImage-abc"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Invalid mps_task_id '': must be a non-empty MPS TaskId, not blank."),
        (" \t", "Invalid mps_task_id ' \\t': must be a non-empty MPS TaskId, not blank."),
        (
            "None",
            "Invalid mps_task_id 'None': rendered to 'None'; "
            "the XCom or value it was templated from is missing.",
        ),
        (None, "Invalid mps_task_id None: must be an MPS TaskId string, not a NoneType."),
        (42, "Invalid mps_task_id 42: must be an MPS TaskId string, not a int."),
    ],
)
def test_unusable_task_ids_are_refused_naming_the_field_and_rule(value, message):
    with pytest.raises(MpsInvalidParameterError) as error:
        validate_mps_task_id(value)

    assert str(error.value) == message
    assert error.value.field == "mps_task_id"
