"""
Copy the images of a finished MPS AIGC task into any Airflow object storage before they expire.

MPS deletes generated images 12 hours after it makes them.  This operator downloads each one,
streaming, into ``ObjectStoragePath(destination, conn_id=dest_conn_id)`` (``file://``, ``s3://``,
``gs://``, ... whatever filesystem Airflow has for the scheme).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_mps import DEFAULT_CONN_ID, IMAGE_URLS_XCOM_KEY
from airflow_provider_mps.links.mps import MPS_TASK_ID_XCOM_KEY, MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.validation import check_wait

# The exceptions and the TaskId check are imported in the methods that run the transfer: a DAG
# file is parsed again and again without needing them.

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_mps.hooks.mps import MpsHook

#: File extensions of the image types MPS produces; other ``image/*`` types go through mimetypes.
EXTENSIONS_BY_CONTENT_TYPE: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "image/avif": ".avif",
    "image/heic": ".heic",
}

#: ``ObjectStoragePath.protocol`` of local paths (``file:///srv/x``, ``local://...`` or a bare ``/srv/x``).
LOCAL_PROTOCOLS = ("file", "local", "")

#: Suffix of the temporary name an image is written under until it is complete.
PARTIAL_SUFFIX = ".partial"

_UNSAFE_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


def safe_path_segment(value: str) -> str:
    """
    Return ``value`` as one path segment that every object store accepts, without collisions.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; when anything had
    to change, a short hash of the original is appended so that two different values (``a:b``
    and ``a_b``) never share a segment.

    :param value: a DAG id, run id or TaskId.
    """
    cleaned = _UNSAFE_PATH_CHARACTERS.sub("_", value)
    if cleaned == value and cleaned not in ("", ".", ".."):
        return cleaned
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{cleaned.strip('.')}-{digest}" if cleaned.strip(".") else digest


def extension_for(content_type: str, url: str) -> str:
    """
    Return the file extension (with its dot) for an image of ``content_type`` fetched from ``url``.

    :param content_type: the media type of the response, without parameters.
    :param url: the image URL, whose suffix is used when the media type is unknown.
    """
    if content_type in EXTENSIONS_BY_CONTENT_TYPE:
        return EXTENSIONS_BY_CONTENT_TYPE[content_type]
    guessed = mimetypes.guess_extension(content_type)
    if guessed:
        return guessed
    stem, dot, suffix = urlsplit(url).path.rpartition("/")[2].rpartition(".")
    return f".{suffix.lower()}" if stem and dot and suffix.isalnum() and len(suffix) <= 5 else ".img"


class MpsAigcImagesToObjectStorageOperator(BaseOperator):
    """
    Save every image of an MPS AIGC task to object storage, streaming, under deterministic names.

    Image ``i`` of the task lands at
    ``{destination}/{dag_id}/{run_id}/{mps_task_id}/{i}{ext}``, each segment made safe for any
    store (:func:`safe_path_segment`) and ``ext`` taken from the response's ``Content-Type``.  The
    bytes go to a hidden temporary name (``.{i}{ext}.<random>.partial``) first and are moved to
    the final name only once complete and checked against ``Content-Length``, so a reader never
    sees a partial image under its final name; a retry overwrites the same names.

    Returns, in image order, ``[{"path", "size", "sha256", "source_url", "content_type"}]``, and
    pushes the source URLs to the XCom key ``image_urls`` and the TaskId to ``mps_task_id`` (what
    the extra links read).  Assets in ``outlets`` receive an
    event whose ``extra`` holds the TaskId and the written paths.

    :param mps_task_id: the MPS TaskId (templated), e.g. ``create.output``.
    :param destination: the base ``ObjectStoragePath`` URL (templated), e.g. ``s3://bucket/images``.
    :param dest_conn_id: the Airflow connection of the destination store, if it needs one.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param region: the MPS region overriding the connection's, if any.
    :param wait_for_completion: wait for a task that is still running; otherwise it must be DONE.
    :param poll_interval: seconds between two polls while waiting.
    :param timeout: the most seconds to wait for the task, or ``None`` for no limit.
    :param download_timeout: seconds the download of one image may stall before it fails.
    :param chunk_size: bytes read and written at a time.
    """

    template_fields: Sequence[str] = ("mps_task_id", "destination", "dest_conn_id")
    operator_extra_links = (MpsAigcImageLink(), MpsConsoleTaskLink())
    ui_color = "#e8f3ff"

    def __init__(
        self,
        *,
        mps_task_id: str,
        destination: str,
        dest_conn_id: str | None = None,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        wait_for_completion: bool = True,
        poll_interval: float = 10,
        timeout: float | None = None,
        download_timeout: float = 60,
        chunk_size: int = 1024 * 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Not templated: final when the DAG is parsed, so a wrong value is an import error.
        check_wait(poll_interval, timeout)
        self.mps_task_id = mps_task_id
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.mps_conn_id = mps_conn_id
        self.region = region
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.download_timeout = download_timeout
        self.chunk_size = chunk_size
        #: What this try saved, kept for its lineage (:meth:`get_openlineage_facets_on_complete`).
        self._saved: list[dict[str, Any]] = []

    @cached_property
    def hook(self) -> MpsHook:
        """The hook to the service (built on first use)."""
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Wait for the task if asked to, then copy each image and return what was written."""
        import httpx

        from airflow_provider_mps.utils.task_id import validate_mps_task_id

        mps_task_id = self.mps_task_id = validate_mps_task_id(self.mps_task_id)
        # The destination is checked before the service is polled: a wait of minutes must not end
        # in an error that was detectable at once (and that Airflow would retry).
        folder = self._destination_folder(context, mps_task_id)
        image_urls = self._finished_image_urls(mps_task_id)
        context["ti"].xcom_push(key=MPS_TASK_ID_XCOM_KEY, value=mps_task_id)
        context["ti"].xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)

        written = []
        with httpx.Client(timeout=self.download_timeout, follow_redirects=True) as client:
            for index, url in enumerate(image_urls):
                written.append(self._copy(client, url, folder, index, mps_task_id))
                self.log.info(
                    "Saved image %s of MPS task %s to %s (%s bytes)",
                    index,
                    mps_task_id,
                    written[-1]["path"],
                    written[-1]["size"],
                )
        self._saved = written
        self._announce(context, mps_task_id, written)
        return written

    def _destination_folder(self, context: Context, mps_task_id: str) -> ObjectStoragePath:
        """
        Return the folder this run's images go to; create it when it is on a local disk.

        :raises MpsInvalidParameterError: naming ``destination`` when it is blank, has a scheme no
            installed filesystem serves, or is a local folder that cannot be created or written.
        """
        from airflow_provider_mps.exceptions import MpsInvalidParameterError

        destination = self.destination
        if not isinstance(destination, str) or not destination.strip():
            raise MpsInvalidParameterError(
                "destination", "must be an object storage URL such as s3://bucket/path.", destination
            )
        try:
            base = ObjectStoragePath(destination, conn_id=self.dest_conn_id)
            base.fs  # noqa: B018 - raises ValueError when no filesystem serves the scheme
        except ValueError as error:
            raise MpsInvalidParameterError(
                "destination",
                "must be an object storage URL whose scheme has a filesystem in Airflow (file://, or "
                f"s3://, gs://, ... with their provider installed); {error}.",
                destination,
            ) from error
        folder = (
            base
            / safe_path_segment(context["ti"].dag_id)
            / safe_path_segment(context["ti"].run_id)
            / safe_path_segment(mps_task_id)
        )
        if folder.protocol in LOCAL_PROTOCOLS:
            # Only local disks have real directories; object stores create keys on write.
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise MpsInvalidParameterError(
                    "destination",
                    f"must be a local folder that can be created and written to; creating {folder.path} "
                    f"failed: {error.strerror or error}.",
                    destination,
                ) from error
            if not os.access(folder.path, os.W_OK | os.X_OK):
                raise MpsInvalidParameterError(
                    "destination",
                    f"must be a local folder that can be created and written to; {folder.path} is not "
                    "writable by this worker.",
                    destination,
                )
        return folder

    def _finished_image_urls(self, mps_task_id: str) -> list[str]:
        from airflow_provider_mps.core.status import is_done, is_failed
        from airflow_provider_mps.exceptions import MpsError, MpsTaskFailedError

        if self.wait_for_completion:
            result = self.hook.wait_for_aigc_image_task(
                mps_task_id, poll_interval=self.poll_interval, timeout=self.timeout
            )
        else:
            result = self.hook.describe_aigc_image_task(mps_task_id)
            status = result["Status"]
            if is_failed(status):
                raise MpsTaskFailedError(mps_task_id, result.get("Message"), result.get("RequestId"))
            if not is_done(status):
                raise MpsError(
                    f"MPS task {mps_task_id} is {status}, not DONE; its images cannot be saved yet. "
                    "Set wait_for_completion=True to wait for it."
                )
        image_urls = list(result.get("ImageUrls") or [])
        if not image_urls:
            raise MpsError(
                f"MPS task {mps_task_id} is DONE but lists no images (RequestId: {result.get('RequestId')})."
            )
        return image_urls

    def _copy(
        self, client: httpx.Client, url: str, folder: ObjectStoragePath, index: int, mps_task_id: str
    ) -> dict[str, Any]:
        import httpx

        from airflow_provider_mps.exceptions import MpsError

        def failure(reason: str) -> MpsError:
            return MpsError(f"Could not save image {index} of MPS task {mps_task_id} from {url}: {reason}")

        partial: ObjectStoragePath | None = None
        try:
            with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code in (403, 404, 410):
                    raise failure(
                        f"HTTP {response.status_code}; the image is gone or expired "
                        "(MPS deletes generated images 12 hours after creating them)."
                    )
                if response.status_code != 200:
                    raise failure(f"HTTP {response.status_code}.")
                content_type = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
                if not content_type.startswith("image/"):
                    raise failure(f"the response is {content_type or 'untyped'}, not an image.")
                expected = response.headers.get("Content-Length")
                name = f"{index}{extension_for(content_type, url)}"
                partial = folder / f".{name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}"
                size, digest = self._write(response, partial)
                received = response.num_bytes_downloaded
            if expected is not None and expected.isdigit() and received != int(expected):
                raise failure(f"the download was truncated: got {received} of {expected} bytes.")
            if size == 0:
                raise failure("the response body is empty.")
            final = folder / name
            partial.move(final)
            partial = None
        except httpx.RemoteProtocolError as error:
            raise failure(f"the download was truncated ({error}).") from error
        except httpx.HTTPError as error:
            raise failure(f"{type(error).__name__}: {error}.") from error
        finally:
            if partial is not None:
                partial.unlink(missing_ok=True)
        return {
            "path": str(final),
            "size": size,
            "sha256": digest,
            "source_url": url,
            "content_type": content_type,
        }

    def _write(self, response: httpx.Response, partial: ObjectStoragePath) -> tuple[int, str]:
        """Stream the body into ``partial`` chunk by chunk; return its size and SHA-256."""
        # Content-Length counts the bytes on the wire: decode only if the server encoded them.
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        if encoding in ("", "identity"):
            chunks = response.iter_raw(self.chunk_size)
        else:
            chunks = response.iter_bytes(self.chunk_size)
        digest = hashlib.sha256()
        size = 0
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        Return the lineage of the copy: each saved image as an output dataset of its store.

        What was saved is read from this operator, never from XCom: the OpenLineage listener calls
        this in a forked child by default, where reading an XCom back hangs until the listener
        kills the child and drops the event.  The transfer never defers, so the operator that ran
        :meth:`execute` is the one asked here.

        :param task_instance: the finished task instance.
        """
        from airflow_provider_mps.utils.openlineage import saved_images_lineage

        return saved_images_lineage(
            self._saved,
            mps_task_id=self.mps_task_id,
            hostname=getattr(task_instance, "hostname", None),
        )

    def _announce(self, context: Context, mps_task_id: str, written: list[dict[str, Any]]) -> None:
        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        for asset in assets:
            context["outlet_events"][asset].extra = {
                "mps_task_id": mps_task_id,
                "paths": [item["path"] for item in written],
            }
