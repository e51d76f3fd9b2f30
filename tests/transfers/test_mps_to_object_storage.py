from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone

import httpx
import pytest
from airflow.providers.common.compat.sdk import DAG, Asset, ObjectStoragePath

from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsTaskFailedError
from airflow_provider_mps.links.mps import MPS_CONSOLE_AIGC_TASK_URL
from airflow_provider_mps.transfers.mps_to_object_storage import (
    MpsAigcImagesToObjectStorageOperator,
    extension_for,
    safe_path_segment,
)
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS
from tests.links._links import extra_link_urls
from tests.operators._dag_runs import run_dag
from tests.sensors._records import states, xcoms

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
RUN_ID = "manual__2026-01-01T00:00:00+00:00"
SAFE_RUN_ID = safe_path_segment(RUN_ID)
EXPIRED = (
    "HTTP 404; the image is gone or expired (MPS deletes generated images 12 hours after creating them)."
)


class _TaskInstance:
    """The little of a task instance the operator touches: its identity and its XCom pushes."""

    dag_id = "images_dag"
    run_id = RUN_ID

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def _create(**fields) -> str:
    from airflow_provider_mps.hooks.mps import MpsHook

    return MpsHook().create_aigc_image_task(prompt="A lighthouse at dawn", model_name="GEM", **fields)


def _wait(mps_task_id: str) -> None:
    from airflow_provider_mps.hooks.mps import MpsHook

    MpsHook().wait_for_aigc_image_task(mps_task_id, poll_interval=0.1, timeout=30)


def _transfer(mps_task_id: str, destination: str, **kwargs) -> MpsAigcImagesToObjectStorageOperator:
    return MpsAigcImagesToObjectStorageOperator(
        task_id="save", mps_task_id=mps_task_id, destination=destination, poll_interval=0.1, **kwargs
    )


def _sha256(url: str) -> str:
    return hashlib.sha256(httpx.get(url).content).hexdigest()


def unknown_scheme_reason(url: str) -> str:
    """What this Airflow line's ``ObjectStoragePath`` says of a scheme no filesystem serves."""
    try:
        ObjectStoragePath(url).fs  # noqa: B018 - raises ValueError
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{url} has a filesystem.")


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- naming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("1-AigcImage-3f2a", "1-AigcImage-3f2a"),
        ("daily_images", "daily_images"),
        ("manual__2026-01-01T00:00:00+00:00", "manual__2026-01-01T00_00_00_00_00-1e8dc70c"),
        ("a/b", "a_b-c14cddc0"),
        ("..", "5ec1f7e7"),
        ("", "e3b0c442"),
    ],
)
def test_path_segments_are_store_safe_and_never_collide(value, segment):
    assert safe_path_segment(value) == segment


def test_values_differing_only_in_unsafe_characters_get_different_segments():
    assert len({safe_path_segment(v) for v in ("a:b", "a_b", "a+b", "a b")}) == 4


@pytest.mark.parametrize(
    ("content_type", "url", "extension"),
    [
        ("image/png", "http://x/0.png", ".png"),
        ("image/jpeg", "http://x/0.png", ".jpg"),
        ("image/webp", "http://x/0", ".webp"),
        ("image/svg+xml", "http://x/0", ".svg"),
        ("image/x-unknown", "http://x/0.heif", ".heif"),
        ("image/x-unknown", "http://x/0", ".img"),
    ],
)
def test_extension_follows_the_content_type_then_the_url(content_type, url, extension):
    assert extension_for(content_type, url) == extension


# -- copying ----------------------------------------------------------------------------------


def test_every_image_is_streamed_to_its_deterministic_name_after_waiting(mps_conn, tmp_path):
    mps_task_id = _create(output_image_count=2, extra_parameters={"OutputFormat": "jpeg"})
    ti = _TaskInstance()

    written = _transfer(mps_task_id, f"file://{tmp_path}/images").execute({"ti": ti})

    urls = [f"{mps_conn.endpoint}/images/{mps_task_id}/{i}.jpg" for i in range(2)]
    folder = tmp_path / "images" / "images_dag" / SAFE_RUN_ID / mps_task_id
    assert written == [
        {
            "path": f"file://{folder}/{i}.jpg",
            "size": (folder / f"{i}.jpg").stat().st_size,
            "sha256": _sha256(urls[i]),
            "source_url": urls[i],
            "content_type": "image/jpeg",
        }
        for i in range(2)
    ]
    assert (folder / "0.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert _files(tmp_path) == [f"images/images_dag/{SAFE_RUN_ID}/{mps_task_id}/{i}.jpg" for i in range(2)]
    assert ti.pushed == {"mps_task_id": mps_task_id, "image_urls": urls}


def test_a_retry_overwrites_the_same_files(mps_conn, tmp_path):
    mps_task_id = _create()
    operator = _transfer(mps_task_id, f"file://{tmp_path}")

    first = operator.execute({"ti": _TaskInstance()})
    second = operator.execute({"ti": _TaskInstance()})

    assert second == first
    assert _files(tmp_path) == [f"images_dag/{SAFE_RUN_ID}/{mps_task_id}/0.png"]


def test_expired_images_fail_naming_the_url_and_task_and_leave_no_file(mps_conn, tmp_path):
    mps_task_id = _create()
    _wait(mps_task_id)
    mps_conn.configure(image_ttl_seconds=0)

    with pytest.raises(MpsError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}").execute({"ti": _TaskInstance()})

    url = f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"
    assert str(error.value) == f"Could not save image 0 of MPS task {mps_task_id} from {url}: {EXPIRED}"
    assert _files(tmp_path) == []


def test_truncated_downloads_fail_and_leave_no_partial_file(mps_conn, tmp_path):
    mps_task_id = _create()
    _wait(mps_task_id)
    mps_conn.configure(drop_after_create_rate={"DownloadImage": 1})

    with pytest.raises(MpsError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}").execute({"ti": _TaskInstance()})

    url = f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"
    prefix = f"Could not save image 0 of MPS task {mps_task_id} from {url}: the download was truncated ("
    assert str(error.value).startswith(prefix)
    assert [d["Fault"] for d in mps_conn.downloads()] == ["truncated_body"]
    assert _files(tmp_path) == []


def test_an_error_page_instead_of_an_image_fails_with_the_status(mps_conn, tmp_path):
    mps_task_id = _create()
    _wait(mps_task_id)
    mps_conn.configure(html_5xx_rate={"DownloadImage": 1})

    with pytest.raises(MpsError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}").execute({"ti": _TaskInstance()})

    url = f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"
    assert str(error.value) == f"Could not save image 0 of MPS task {mps_task_id} from {url}: HTTP 502."
    assert _files(tmp_path) == []


def test_without_waiting_a_running_task_is_refused(mps_conn, tmp_path):
    mps_task_id = _create()
    mps_conn.force_status(mps_task_id, "RUN")

    with pytest.raises(MpsError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}", wait_for_completion=False).execute(
            {"ti": _TaskInstance()}
        )

    assert str(error.value) == (
        f"MPS task {mps_task_id} is RUN, not DONE; its images cannot be saved yet. "
        "Set wait_for_completion=True to wait for it."
    )
    assert mps_conn.downloads() == []


def test_a_failed_task_fails_the_transfer_with_the_service_message(mps_conn, tmp_path):
    mps_task_id = _create()
    mps_conn.force_status(mps_task_id, "FAIL", message="Content moderation rejected the prompt.")

    with pytest.raises(MpsTaskFailedError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}").execute({"ti": _TaskInstance()})

    assert (error.value.task_id, error.value.message) == (
        mps_task_id,
        "Content moderation rejected the prompt.",
    )
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "kwargs"), [("mps_task_id", {"mps_task_id": " "}), ("destination", {"destination": ""})]
)
def test_blank_fields_fail_before_anything_is_sent(mps_conn, field, kwargs):
    arguments = {"mps_task_id": "task-1", "destination": "file:///tmp/never", **kwargs}

    with pytest.raises(MpsInvalidParameterError) as error:
        _transfer(**arguments).execute({"ti": _TaskInstance()})

    assert error.value.field == field
    assert mps_conn.requests() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 0}, "Invalid poll_interval 0: must be a number of seconds greater than 0."),
        ({"poll_interval": True}, "Invalid poll_interval True: must be a number of seconds greater than 0."),
        ({"timeout": 0}, "Invalid timeout 0: must be a number of seconds greater than 0."),
        ({"timeout": "60"}, "Invalid timeout '60': must be a number of seconds greater than 0."),
    ],
)
def test_waiting_knobs_are_refused_when_the_operator_is_built(kwargs, message):
    with pytest.raises(MpsInvalidParameterError) as error:
        MpsAigcImagesToObjectStorageOperator(
            task_id="save", mps_task_id="task-1", destination="file:///tmp/never", **kwargs
        )

    assert str(error.value) == message


def test_a_destination_under_a_file_is_refused_before_the_task_is_polled(mps_conn, tmp_path):
    mps_task_id = _create()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    destination = f"file://{a_file}/images"

    with pytest.raises(MpsInvalidParameterError) as error:
        _transfer(mps_task_id, destination).execute({"ti": _TaskInstance()})

    folder = a_file / "images" / "images_dag" / SAFE_RUN_ID / mps_task_id
    assert (error.value.field, error.value.value, error.value.rule) == (
        "destination",
        destination,
        f"must be a local folder that can be created and written to; creating {folder} failed: "
        "Not a directory.",
    )
    assert [request["Action"] for request in mps_conn.requests()] == ["CreateAigcImageTask"]


def test_a_destination_scheme_without_a_filesystem_is_refused_before_the_task_is_polled(mps_conn):
    mps_task_id = _create()

    with pytest.raises(MpsInvalidParameterError) as error:
        _transfer(mps_task_id, "nosuch://bucket/images").execute({"ti": _TaskInstance()})

    # Airflow's own reason closes the message: its wording differs by Airflow line.
    airflow_reason = unknown_scheme_reason("nosuch://bucket/images")
    assert str(error.value) == (
        "Invalid destination 'nosuch://bucket/images': must be an object storage URL whose scheme has a "
        "filesystem in Airflow (file://, or s3://, gs://, ... with their provider installed); "
        f"{airflow_reason}."
    )
    assert [request["Action"] for request in mps_conn.requests()] == ["CreateAigcImageTask"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_local_destination_is_refused_before_the_task_is_polled(mps_conn, tmp_path):
    mps_task_id = _create()
    folder = tmp_path / "images" / "images_dag" / SAFE_RUN_ID / mps_task_id
    folder.mkdir(parents=True)
    folder.chmod(0o555)

    with pytest.raises(MpsInvalidParameterError) as error:
        _transfer(mps_task_id, f"file://{tmp_path}/images").execute({"ti": _TaskInstance()})

    assert error.value.rule == (
        f"must be a local folder that can be created and written to; {folder} is not writable by this worker."
    )
    assert [request["Action"] for request in mps_conn.requests()] == ["CreateAigcImageTask"]


def test_a_bare_local_path_gets_its_folder_created(mps_conn, tmp_path):
    mps_task_id = _create()

    written = _transfer(mps_task_id, str(tmp_path / "plain")).execute({"ti": _TaskInstance()})

    assert [item["path"] for item in written] == [
        f"{tmp_path}/plain/images_dag/{SAFE_RUN_ID}/{mps_task_id}/0.png"
    ]
    assert _files(tmp_path) == [f"plain/images_dag/{SAFE_RUN_ID}/{mps_task_id}/0.png"]


# -- through Airflow ------------------------------------------------------------------------------


@pytest.fixture
def memory_store():
    from fsspec.implementations.memory import MemoryFileSystem

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.io.store import attach
    else:
        from airflow.io.store import attach

    fs = MemoryFileSystem()
    attach(protocol="memory", fs=fs)
    yield fs
    if fs.exists("/mps-bucket"):
        fs.rm("/mps-bucket", recursive=True)


def test_dag_copies_images_to_file_and_memory_stores_and_announces_the_asset(
    airflow_home, mps_conn, tmp_path, memory_store
):
    mps_task_id = _create()
    asset = Asset("mps://images/lighthouse")
    with DAG("mps_transfer_stores", schedule=None, start_date=START) as dag:
        MpsAigcImagesToObjectStorageOperator(
            task_id="to_file",
            mps_task_id="{{ dag_run.conf['mps_task_id'] }}",
            destination="file://{{ dag_run.conf['root'] }}",
            outlets=[asset],
        )
        MpsAigcImagesToObjectStorageOperator(
            task_id="to_memory", mps_task_id=mps_task_id, destination="memory://mps-bucket/images"
        )

    run = run_dag(dag, run_conf={"mps_task_id": mps_task_id, "root": str(tmp_path)})

    url = f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"
    run_segment = safe_path_segment(run.run_id)
    image = {"sha256": _sha256(url), "source_url": url, "content_type": "image/png"}
    assert states(dag.dag_id, run.run_id) == {"to_file": "success", "to_memory": "success"}
    values = xcoms(dag.dag_id, run.run_id)
    file_path = tmp_path / "mps_transfer_stores" / run_segment / mps_task_id / "0.png"
    assert values[("to_file", "return_value")] == [
        {"path": f"file://{file_path}", "size": file_path.stat().st_size, **image}
    ]
    memory_key = f"/mps-bucket/images/mps_transfer_stores/{run_segment}/{mps_task_id}/0.png"
    # How a memory:// path prints differs by line: memory://bucket/... on 3, memory:///bucket/... on 2.
    memory_path = str(
        ObjectStoragePath("memory://mps-bucket/images")
        / "mps_transfer_stores"
        / run_segment
        / mps_task_id
        / "0.png"
    )
    assert values[("to_memory", "return_value")] == [
        {"path": memory_path, "size": memory_store.size(memory_key), **image}
    ]
    assert memory_store.find("/mps-bucket") == [memory_key]
    assert values[("to_file", "image_urls")] == [url]
    # The TaskId of the console link comes from the transfer's rendered mps_task_id (it returns no TaskId).
    assert extra_link_urls(dag, run.run_id, "to_file") == {
        "MPS Generated Image": url,
        "MPS Console": f"{MPS_CONSOLE_AIGC_TASK_URL}?taskId={mps_task_id}",
    }
    assert asset_event_extras(asset.uri, run.run_id) == [
        {"mps_task_id": mps_task_id, "paths": [f"file://{file_path}"]}
    ]


def asset_event_extras(uri: str, run_id: str) -> list[dict]:
    """The ``extra`` of each event of the asset (a Dataset on Airflow 2) that the run's tasks emitted."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetEvent as Event, AssetModel as Model

        event_of = Event.asset_id
    else:
        from airflow.models.dataset import DatasetEvent as Event, DatasetModel as Model

        event_of = Event.dataset_id
    with create_session() as session:
        return list(
            session.scalars(
                select(Event.extra)
                .join(Model, Model.id == event_of)
                .where(Model.uri == uri, Event.source_run_id == run_id)
            ).all()
        )


def test_the_outlet_is_an_asset_on_airflow_3_and_a_dataset_on_airflow_2():
    expected = (
        ("airflow.sdk.definitions.asset", "Asset") if AIRFLOW_V_3_0_PLUS else ("airflow.datasets", "Dataset")
    )

    assert (Asset.__module__, Asset.__name__) == expected


@pytest.fixture
def gzip_image_server():
    """A loopback server answering every GET with a gzip-encoded PNG (the emulator never encodes)."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
    body = gzip.compress(image)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/images/t/0.png", image
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_encoded_download_is_stored_decoded_and_checked_against_the_wire_length(
    tmp_path, gzip_image_server
):
    url, image = gzip_image_server
    operator = _transfer("task-1", f"file://{tmp_path}")

    with httpx.Client() as client:
        written = operator._copy(client, url, ObjectStoragePath(f"file://{tmp_path}"), 0, "task-1")

    assert written == {
        "path": f"file://{tmp_path}/0.png",
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
        "source_url": url,
        "content_type": "image/png",
    }
    assert (tmp_path / "0.png").read_bytes() == image
    assert _files(tmp_path) == ["0.png"]
