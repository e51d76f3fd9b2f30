"""
The ``tencentcloud_mps`` connection in Admin > Connections: the form, and its Test button.

A person creates the connection in the form, pointing it at the emulator, and tests it from the
connections list (``[core] test_connection = Enabled``): a success names the endpoint, and a
wrong SecretKey gives a clear failure that shows neither key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from airflow_provider_mps.hooks._mps_connection_form import CONN_FIELDS, PLACEHOLDERS
from tests.browser.airflow_ui import (
    AIRFLOW_VERSION,
    click_test_connection,
    connection_row,
    expand,
    open_dialog,
    open_new_connection_form,
    save_connection,
    send_no_port_when_none_is_stored,
    toast,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.browser.conftest import DocsScreenshots
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.browser

CONNECTION_TYPE = "Tencent Cloud MPS"
WRONG_SECRET_KEY = "wrong-secret-key-typed-by-mistake-0000"

#: Airflow 3.3.1 and 3.3.2 refuse to test any saved connection without a port from the UI.
TEST_BUTTON_REFUSES_PORTLESS_CONNECTIONS = pytest.mark.xfail(
    AIRFLOW_VERSION.release[:3] in ((3, 3, 1), (3, 3, 2)),
    reason=(
        "Airflow 3.3.1-3.3.2: the UI sends port 0 for a connection without a port and the API answers "
        "400 'The host or port to test differs from the stored connection' (apache/airflow#73298)"
    ),
    strict=True,
)


def _fill_emulator_connection(page: Page, conn_id: str, emulator: EmulatorHandle) -> Locator:
    dialog = open_new_connection_form(page, CONNECTION_TYPE)
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.locator("input[name=login]").fill(emulator.secret_id)
    dialog.locator("input[name=password]").fill(emulator.secret_key)
    expand(dialog, "Extra Fields")
    dialog.locator("[name=element_endpoint]").fill(emulator.endpoint)
    return dialog


def test_connection_form_shows_the_mps_fields_with_their_labels_help_and_defaults(
    page: Page, airflow: AirflowCluster, docs_screenshots: DocsScreenshots
) -> None:
    dialog = open_new_connection_form(page, CONNECTION_TYPE)

    labels = [
        label.replace("*", "").strip() for label in dialog.locator("label[data-part=label]").all_inner_texts()
    ]
    assert labels[:5] == ["Connection ID", "Connection Type", "Description", "SecretId", "SecretKey"]
    for hidden in ("Host", "Port", "Schema", "Login", "Password"):
        expect(dialog.get_by_text(hidden, exact=True)).to_have_count(0)
    expect(dialog.locator("input[name=login]")).to_have_attribute("placeholder", PLACEHOLDERS["login"])
    expect(dialog.locator("input[name=password]")).to_have_attribute("placeholder", PLACEHOLDERS["password"])
    expect(dialog.locator("input[name=password]")).to_have_attribute("type", "password")
    docs_screenshots.save("connection-form.png", dialog)

    expand(dialog, "Extra Fields")
    for spec in CONN_FIELDS.values():
        expect(dialog.get_by_text(spec["label"], exact=True)).to_be_visible()
        expect(dialog.get_by_text(spec["description"], exact=True)).to_be_visible()
    expect(dialog.locator("[name=element_region]")).to_have_value("ap-guangzhou")
    expect(dialog.locator("[name=element_request_timeout]")).to_have_value("60")
    expect(dialog.locator("[name=element_token]")).to_have_attribute("type", "password")
    docs_screenshots.save("connection-form-extras.png", dialog)


@TEST_BUTTON_REFUSES_PORTLESS_CONNECTIONS
def test_test_button_of_a_saved_connection_reports_success_against_the_emulator(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    save_connection(page, _fill_emulator_connection(page, "mps_test_button", mps_emulator))

    answer = click_test_connection(page, "mps_test_button")

    assert answer.status == 200, answer.text()
    expect(toast(page, "Test Connection Successful")).to_contain_text(
        f"Connection to MPS at {mps_emulator.endpoint} succeeded"
    )


def test_test_button_reports_success_then_a_clear_failure_with_a_wrong_secret_key(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    # The fix of apache/airflow#73298, applied on the way (no change on Airflow versions that have it).
    page.route("**/api/v2/connections/test", send_no_port_when_none_is_stored)
    save_connection(page, _fill_emulator_connection(page, "mps_emulator_ui", mps_emulator))

    succeeded = click_test_connection(page, "mps_emulator_ui")

    assert succeeded.json()["status"] is True, succeeded.text()
    assert succeeded.json()["message"].startswith(f"Connection to MPS at {mps_emulator.endpoint} succeeded")
    expect(toast(page, "Test Connection Successful")).to_contain_text(succeeded.json()["message"])

    connection_row(page, "mps_emulator_ui").get_by_role("button", name="Edit Connection").click()
    dialog = open_dialog(page)
    dialog.locator("input[name=password]").fill(WRONG_SECRET_KEY)
    save_connection(page, dialog)
    page.reload()
    failed = click_test_connection(page, "mps_emulator_ui")

    assert failed.json()["status"] is False, failed.text()
    message = failed.json()["message"]
    assert message.startswith(f"Connection to MPS at {mps_emulator.endpoint} failed: "), message
    assert "AuthFailure.SignatureFailure" in message, message
    expect(toast(page, "Test Connection Failed")).to_contain_text(message)
    for secret in (WRONG_SECRET_KEY, mps_emulator.secret_key):
        assert secret not in message
        assert secret not in page.locator("body").inner_text()
        assert secret not in page.content()
    calls = [(call["Action"], call["SecretId"], call["ErrorCode"]) for call in mps_emulator.requests()]
    assert calls == [
        ("DescribeTranscodeTemplates", mps_emulator.secret_id, None),
        ("DescribeTranscodeTemplates", mps_emulator.secret_id, "AuthFailure.SignatureFailure"),
    ]
