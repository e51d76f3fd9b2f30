"""
The spend guard's parts: the ``max_images`` cap and the account-wide image budget, against a real Redis.

The budget is counted in a ``redis-server`` subprocess (as the shared quota tests do), and the
cross-process case runs real Python processes reserving at the same instant against it.
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
import re
import subprocess
import sys
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.core.budget import (
    ImageBudget,
    MpsBudgetExceededError,
    Reservation,
    check_max_images,
    image_budget,
    reserve_images,
)
from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsNetworkError
from airflow_provider_mps.get_provider_info import get_provider_info
from airflow_provider_mps.hooks._mps_connection import KNOWN_EXTRAS, settings_from_connection, unknown_extras
from airflow_provider_mps.utils.shared_quota import clear_storages
from tests.conftest import REPO_ROOT
from tests.utils.redis_server import module_redis_server

BUDGET_ENV = "AIRFLOW__TENCENTCLOUD_MPS__IMAGE_BUDGET"
PASSWORD = "budget-redis-pass"
KEY = "AKIDBUDGET@https://mps.tencentcloudapi.com"
CONFIGURED = "[tencentcloud_mps] image_budget"
WHAT = "the create of task 'shots'"


def budget(rate: str) -> ImageBudget:
    return ImageBudget(rate, CONFIGURED)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A password-protected redis-server on a free loopback port for this module."""
    yield from module_redis_server(tmp_path_factory, PASSWORD)


@pytest.fixture
def store(redis_server):
    """The Redis storage URI, with every count forgotten and the process's storages reset."""
    redis_server.flush()
    clear_storages()
    yield redis_server.uri
    clear_storages()


def test_the_spend_guard_loads_no_hook_operator_trigger_or_sdk():
    # The create paths call it; it must not import them back, nor the Tencent Cloud SDK.
    code = (
        "import sys, airflow_provider_mps.core.budget, airflow_provider_mps.core.metrics\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow_provider_mps', 'tencentcloud')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    loaded = set(ast.literal_eval(result.stdout.splitlines()[-1]))
    assert loaded - {"airflow_provider_mps.get_provider_info"} == {
        "airflow_provider_mps",
        "airflow_provider_mps.capabilities",  # the service's limits, plain data (for core.fields)
        "airflow_provider_mps.core",
        "airflow_provider_mps.core.budget",
        "airflow_provider_mps.core.fields",  # the one whole-number rule, for max_images
        "airflow_provider_mps.core.metrics",
        "airflow_provider_mps.exceptions",
        "airflow_provider_mps.utils",
        "airflow_provider_mps.utils.shared_quota",
    }


# -- max_images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "max_images"), [(30, None), (10, 10), (1, 500)])
def test_a_count_within_the_cap_or_without_one_passes(count, max_images):
    assert check_max_images(count, max_images, "output_image_count") is None


def test_a_count_over_the_cap_fails_without_retries_naming_count_cap_and_field():
    with pytest.raises(MpsInvalidParameterError) as raised:
        check_max_images(30, 10, "the sum of output_image_count over 30 requests")

    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value) == (
        "Invalid the sum of output_image_count over 30 requests 30: asks for 30 images, more than "
        "max_images=10 allows, so nothing was sent and the task fails without retries (the same input asks "
        "for the same count). Fix the input, or raise max_images if this many images is intended."
    )


@pytest.mark.parametrize("max_images", [0, -3, True, 2.5, "10"])
def test_a_cap_that_is_not_a_whole_number_of_at_least_one_is_refused(max_images):
    with pytest.raises(MpsInvalidParameterError) as raised:
        check_max_images(1, max_images, "output_image_count")

    assert (raised.value.field, raised.value.value) == ("max_images", max_images)
    assert raised.value.rule == "must be a whole number of images, 1 or more, or None for no cap."


# -- where the budget is set ----------------------------------------------------------------------


def test_the_budget_comes_from_the_configuration(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, " 2000 per day ")

    assert image_budget(conn_id="mps_default") == ImageBudget("2000 per day", CONFIGURED)


def test_a_connections_extra_overrides_the_configured_budget(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "2000 per day")

    assert image_budget(conn_id="mps_team_a", extra="20 per day") == ImageBudget(
        "20 per day", "extra 'image_budget' of connection 'mps_team_a'"
    )


@pytest.mark.parametrize("value", [None, "", "   "])
def test_without_a_budget_nothing_is_counted(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(BUDGET_ENV, raising=False)
    else:
        monkeypatch.setenv(BUDGET_ENV, value)

    assert image_budget(conn_id="mps_default", extra="") is None
    assert reserve_images(KEY, 5, budget=None, storage_uri=None, what=WHAT) is None


def test_the_connection_reads_the_image_budget_extra():
    extras = {"image_budget": " 20 per day ", "region": "ap-guangzhou"}

    settings = settings_from_connection(
        conn_id="mps_budget", conn_type="tencentcloud_mps", login=None, password=None, extras=extras
    )

    assert (settings.image_budget, "image_budget" in KNOWN_EXTRAS) == ("20 per day", True)
    assert unknown_extras(extras, "tencentcloud_mps") == []


def test_an_image_budget_extra_that_is_not_text_is_refused():
    with pytest.raises(MpsInvalidParameterError) as raised:
        settings_from_connection(
            conn_id="mps_budget",
            conn_type="tencentcloud_mps",
            login=None,
            password=None,
            extras={"image_budget": 20},
        )

    assert str(raised.value) == (
        "Invalid extra 'image_budget' of connection 'mps_budget' 20: must be a rate such as 2000 per day."
    )


def test_the_provider_declares_the_image_budget_option():
    option = get_provider_info()["config"]["tencentcloud_mps"]["options"]["image_budget"]

    assert {key: value for key, value in option.items() if key != "description"} == {
        "version_added": "0.1.0",
        "type": "string",
        "example": "2000 per day",
        "default": "",
    }
    assert "in the store quota_storage_uri names, which must be set" in option["description"]


# -- configuration errors (fail without retries, nothing sent) ----------------------------------------


def test_a_budget_without_a_shared_store_is_a_configuration_error_naming_what_to_set():
    with pytest.raises(MpsInvalidParameterError) as raised:
        reserve_images(KEY, 1, budget=budget("20 per day"), storage_uri=None, what=WHAT)

    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value) == (
        "Invalid [tencentcloud_mps] image_budget '20 per day': is counted across every process of the "
        "deployment, so it needs a store they all reach: set [tencentcloud_mps] quota_storage_uri "
        "(AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI), such as redis://redis-host:6379/0, in every "
        "component, or unset the budget. A count kept per process would not bound the account's spend."
    )


def test_a_store_of_one_process_is_refused_for_the_budget():
    with pytest.raises(MpsInvalidParameterError) as raised:
        reserve_images(KEY, 1, budget=budget("20 per day"), storage_uri="memory://", what=WHAT)

    assert str(raised.value) == (
        "Invalid [tencentcloud_mps] quota_storage_uri 'memory://': counts in each process alone with "
        "memory://, so it cannot hold [tencentcloud_mps] image_budget across the deployment: name a store "
        "every process reaches, such as redis://redis-host:6379/0."
    )


@pytest.mark.parametrize(
    "rate", ["lots", "2000 per fortnight", "2000", "10 per hour; 100 per day", "-5 per day"]
)
def test_a_malformed_budget_names_the_setting_and_the_syntax(store, rate):
    with pytest.raises(MpsInvalidParameterError) as raised:
        reserve_images(
            KEY,
            1,
            budget=ImageBudget(rate, "extra 'image_budget' of connection 'c'"),
            storage_uri=store,
            what=WHAT,
        )

    assert str(raised.value) == (
        f"Invalid extra 'image_budget' of connection 'c' {rate!r}: must be one rate, '<images> per [<n>] "
        "<second|minute|hour|day|month|year>' in the limits library's rate syntax, such as 2000 per day or "
        "500 per 12 hours."
    )


def test_a_count_larger_than_the_whole_budget_fails_without_retries_and_reserves_nothing(store):
    with pytest.raises(MpsInvalidParameterError) as raised:
        reserve_images(KEY, 30, budget=budget("20 per day"), storage_uri=store, what=WHAT)

    assert str(raised.value) == (
        "Invalid image count of the create of task 'shots' 30: asks for 30 images, more than the whole image "
        "budget 20 per day ([tencentcloud_mps] image_budget) allows in one window, so no retry could ever "
        "send it; nothing was sent."
    )
    assert reserve_images(KEY, 20, budget=budget("20 per day"), storage_uri=store, what=WHAT).used == 20


# -- reserving ------------------------------------------------------------------------------------


def test_a_reservation_counts_its_images_and_logs_the_budget_used(store, caplog):
    caplog.set_level(logging.INFO, logger="airflow_provider_mps.core.budget")

    first = reserve_images(KEY, 3, budget=budget("20 per day"), storage_uri=store, what=WHAT)
    second = reserve_images(KEY, 4, budget=budget("20 per day"), storage_uri=store, what="the batch 'b'")

    assert (first, second) == (
        Reservation(budget=budget("20 per day"), count=3, used=3, limit=20),
        Reservation(budget=budget("20 per day"), count=4, used=7, limit=20),
    )
    assert [r.getMessage() for r in caplog.records if r.name == "airflow_provider_mps.core.budget"] == [
        "Reserved 3 image(s) for the create of task 'shots' from the image budget 20 per day "
        "([tencentcloud_mps] image_budget): 3 of 20 used in the window",
        "Reserved 4 image(s) for the batch 'b' from the image budget 20 per day "
        "([tencentcloud_mps] image_budget): 7 of 20 used in the window",
    ]
    assert PASSWORD not in caplog.text


def test_a_create_the_budget_cannot_cover_is_refused_whole_and_reserves_nothing(store):
    reserve_images(KEY, 15, budget=budget("20 per day"), storage_uri=store, what=WHAT)
    before = time.time()

    with pytest.raises(MpsBudgetExceededError) as raised:
        reserve_images(KEY, 10, budget=budget("20 per day"), storage_uri=store, what="the batch 'catalogue'")

    error = raised.value
    assert (error.count, error.used, error.limit, type(error).__mro__[1]) == (10, 15, 20, MpsError)
    assert not isinstance(error, AirflowFailException)  # Airflow's retries apply: the window moves
    assert before + 86400 - 5 < error.frees_at <= time.time() + 86400
    assert str(error).startswith(
        "The image budget 20 per day ([tencentcloud_mps] image_budget) cannot cover the 10 image(s) of the "
        "batch 'catalogue': 15 of 20 are used in the current window, so nothing was sent. The oldest image "
        "counted leaves the window at "
    )
    assert re.search(r" UTC \(in (23 h 59|24 h 00) min\); 5 must leave before these fit\. ", str(error))
    # Nothing of the refused 10 was counted: the last 5 images still fit.
    assert reserve_images(KEY, 5, budget=budget("20 per day"), storage_uri=store, what=WHAT).used == 20


def test_the_refusal_survives_pickling_as_airflow_ships_errors():
    error = MpsBudgetExceededError(budget("20 per day"), 3, 19, 20, 1_700_000_000.0, WHAT)

    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), str(copy).split(" (in ")[0], copy.frees_at) == (
        MpsBudgetExceededError,
        str(error).split(" (in ")[0],
        1_700_000_000.0,
    )


def test_each_account_has_its_own_budget(store):
    reserve_images(KEY, 20, budget=budget("20 per day"), storage_uri=store, what=WHAT)

    other = reserve_images(
        "AKIDOTHER@https://mps.tencentcloudapi.com",
        20,
        budget=budget("20 per day"),
        storage_uri=store,
        what=WHAT,
    )

    assert other.used == 20


def test_a_raised_budget_keeps_the_images_already_counted(store):
    reserve_images(KEY, 20, budget=budget("20 per day"), storage_uri=store, what=WHAT)

    raised = reserve_images(KEY, 5, budget=budget("25 per day"), storage_uri=store, what=WHAT)

    assert (raised.used, raised.limit) == (25, 25)
    with pytest.raises(MpsBudgetExceededError):
        reserve_images(KEY, 1, budget=budget("25 per day"), storage_uri=store, what=WHAT)


def test_the_window_frees_as_it_moves(store):
    reserve_images(KEY, 2, budget=budget("2 per second"), storage_uri=store, what=WHAT)
    with pytest.raises(MpsBudgetExceededError) as raised:
        reserve_images(KEY, 1, budget=budget("2 per second"), storage_uri=store, what=WHAT)

    time.sleep(max(raised.value.frees_at - time.time(), 0) + 0.05)

    assert reserve_images(KEY, 2, budget=budget("2 per second"), storage_uri=store, what=WHAT).used == 2


def test_an_unreachable_store_fails_the_create_before_it_is_sent_without_showing_the_password():
    from tests.hooks.conftest import closed_loopback_port

    clear_storages()
    uri = f"redis://:p4ss@127.0.0.1:{closed_loopback_port()}/0"
    try:
        with pytest.raises(MpsNetworkError) as raised:
            reserve_images(KEY, 1, budget=budget("20 per day"), storage_uri=uri, what=WHAT)
    finally:
        clear_storages()

    error = raised.value
    assert (error.code, error.action, error.request_may_have_reached_service) == (
        "ClientNetworkError.BudgetStorageUnavailable",
        "CreateAigcImageTask",
        False,
    )
    assert "redis://***@127.0.0.1:" in str(error)
    assert "p4ss" not in str(error)


# -- several processes at once ----------------------------------------------------------------------

#: One process of the deployment: it connects, waits for the common start instant, then reserves
#: ``size`` images ``times`` times as fast as it can; it prints what each attempt got.
RESERVER = """
import json, sys, time
from airflow_provider_mps.core.budget import ImageBudget, MpsBudgetExceededError, reserve_images
uri, start, times, size, rate, key = sys.argv[1:]
start, times, size = float(start), int(times), int(size)
budget = ImageBudget(rate, "[tencentcloud_mps] image_budget")
reserve_images("warm-up", 1, budget=budget, storage_uri=uri, what="a warm-up")
while time.time() < start:
    time.sleep(0.0005)
got = []
for _ in range(times):
    try:
        got.append(reserve_images(key, size, budget=budget, storage_uri=uri, what="a create").count)
    except MpsBudgetExceededError:
        got.append(0)
print(json.dumps(got))
"""


def _reserve_in_processes(uri: str, *, processes: int, times: int, size: int, rate: str) -> list[list[int]]:
    """Start ``processes`` reservers at once; return what each attempt of each process got."""
    start = time.time() + 8.0  # after every process has imported Airflow and connected
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RESERVER, uri, str(start), str(times), str(size), rate, KEY],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert time.time() > start, "a process finished before the common start: raise the lead time"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_processes_reserving_at_once_cannot_overspend_by_one_image(store):
    # Four processes race for 100 images, one at a time, 60 attempts each: exactly 100 are granted.
    results = _reserve_in_processes(store, processes=4, times=60, size=1, rate="100 per day")

    granted = [sum(got) for got in results]
    assert (sum(granted), sum(len(got) for got in results)) == (100, 240)


def test_two_batches_at_once_that_together_exceed_the_budget_get_one_whole_reservation(store):
    results = _reserve_in_processes(store, processes=2, times=1, size=15, rate="20 per day")

    assert sorted(got[0] for got in results) == [0, 15]
    assert reserve_images(KEY, 5, budget=budget("20 per day"), storage_uri=store, what=WHAT).used == 20
