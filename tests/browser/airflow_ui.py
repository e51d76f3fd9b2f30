"""
What a person does in the Airflow 3 UI, as Playwright steps: one function per action.

The selectors are the ones a person relies on (button names, field labels, dialog titles) plus
the ``element_<param>`` ids and names Airflow gives every field of a Params form.  Each function
waits for the UI to be ready for the next step, so tests read as the steps a person takes.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from packaging.version import Version
from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response, Route

#: The Airflow whose UI the tests drive (the one installed next to them).
AIRFLOW_VERSION = Version(version("apache-airflow"))


def open_dialog(page: Page) -> Locator:
    """The modal dialog that is open now (Airflow keeps closed popovers in the page, hidden)."""
    dialog = page.locator("[role=dialog][data-state=open]")
    expect(dialog).to_be_visible()
    return dialog


# ---------------------------------------------------------------------------------- trigger form


def open_trigger_form(page: Page, dag_id: str) -> Locator:
    """Open the DAG's page and click "Trigger"; return the trigger dialog with its Params form."""
    page.goto(f"/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = open_dialog(page)
    expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    return dialog


def field(dialog: Locator, param: str) -> Locator:
    """The input, text area or number box of Params field ``param``."""
    return dialog.locator(f"[name='element_{param}']")


def type_into(dialog: Locator, param: str, text: str) -> None:
    """Empty Params field ``param``, then type ``text`` key by key, as a person does."""
    box = field(dialog, param)
    box.fill("")
    box.press_sequentially(text)
    expect(box).to_have_value(text)


def choose(page: Page, dialog: Locator, param: str, option: str) -> None:
    """Open the drop-down of Params field ``param`` and pick the option labelled ``option``."""
    dialog.locator(f"#element_{param}").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(dialog.locator(f"#element_{param}")).to_contain_text(option)


def switch_on(dialog: Locator, param: str) -> None:
    """Turn on the switch of a boolean Params field."""
    dialog.locator(f"[id='switch:element_{param}']").click()
    expect(field(dialog, param)).to_be_checked()


def required_fields(dialog: Locator) -> list[str]:
    """The labels of the Params fields the form marks required (with ``*``)."""
    labels = dialog.locator("label[data-part=label][data-required]")
    return [text.replace("*", "").strip() for text in labels.all_inner_texts()]


def trigger_button(dialog: Locator) -> Locator:
    """The dialog's own "Trigger" button (the form disables it while a field is invalid)."""
    return dialog.get_by_role("button", name="Trigger", exact=True)


def submit_trigger_form(page: Page, dialog: Locator, dag_id: str) -> dict[str, Any]:
    """
    Click the dialog's "Trigger" button; return the DAG run the UI created (the API's answer).

    :raises AssertionError: when the button is disabled or the API refuses the run.
    """
    button = trigger_button(dialog)
    expect(button).to_be_enabled()
    with page.expect_response(
        lambda response: (
            response.request.method == "POST" and response.url.endswith(f"/api/v2/dags/{dag_id}/dagRuns")
        )
    ) as answer:
        button.click()
    response = answer.value
    assert response.ok, f"The UI's trigger request was refused: {response.status} {response.text()}"
    expect(dialog).to_be_hidden()
    return response.json()


# ---------------------------------------------------------------------------------- task instance


def open_task_details(page: Page, dag_id: str, run_id: str, task_id: str) -> None:
    """Open the "Details" tab of a task instance, where Airflow 3 lists its extra links."""
    page.goto(f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/details")
    expect(page.get_by_text("Extra Links")).to_be_visible()


# ---------------------------------------------------------------------------------- connections


def open_new_connection_form(page: Page, connection_type: str) -> Locator:
    """Admin > Connections > "Add Connection", with ``connection_type`` (its display name) chosen."""
    page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = open_dialog(page)
    dialog.get_by_role("combobox").fill(connection_type)
    page.get_by_role("option", name=connection_type, exact=True).click()
    expect(dialog.get_by_text("Standard Fields")).to_be_visible()
    return dialog


def expand(dialog: Locator, section: str) -> None:
    """Open a collapsed section of a form ("Extra Fields", "Extra Fields JSON", ...)."""
    header = dialog.get_by_role("button", name=section, exact=True)
    if header.get_attribute("aria-expanded") != "true":
        header.click()
    expect(header).to_have_attribute("aria-expanded", "true")


def save_connection(page: Page, dialog: Locator) -> None:
    """Click "Save" and wait until the connection is stored and the dialog closed."""
    with page.expect_response(
        lambda response: (
            response.request.method in ("POST", "PATCH") and "/api/v2/connections" in response.url
        )
    ) as answer:
        dialog.get_by_role("button", name="Save").click()
    assert answer.value.ok, f"Saving the connection failed: {answer.value.status} {answer.value.text()}"
    expect(dialog).to_be_hidden()


def connection_row(page: Page, conn_id: str) -> Locator:
    """The row of ``conn_id`` in the connections list."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
    expect(row).to_be_visible()
    return row


def click_test_connection(page: Page, conn_id: str) -> Response:
    """Click the "Test Connection" action of ``conn_id``'s row; return the API's answer."""
    with page.expect_response(lambda response: response.url.endswith("/api/v2/connections/test")) as answer:
        connection_row(page, conn_id).get_by_role("button", name="Test Connection").click()
    return answer.value


def send_no_port_when_none_is_stored(route: Route) -> None:
    """
    Route handler: send ``port: null`` where the Airflow 3.3.1-3.3.2 UI sends ``port: 0``.

    Those UIs build the test request with ``Number(connection.port)``, which is ``0`` for a
    connection without a port, and their API then refuses the test of every such connection with
    "The host or port to test differs from the stored connection" (apache/airflow#73298, fixed in
    the API by treating ``0`` as no port).  This does on the way what the fix does on arrival.
    """
    body = json.loads(route.request.post_data or "{}")
    if body.get("port") == 0:
        body["port"] = None
    route.continue_(post_data=json.dumps(body))


def toast(page: Page, title: str) -> Locator:
    """The notification titled ``title`` (it holds the title and the message)."""
    notice = page.get_by_role("status").filter(has_text=title)
    expect(notice).to_be_visible()
    return notice
