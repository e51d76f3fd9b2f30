"""
The HTTP layer: a thin Starlette app speaking the Tencent Cloud API 3.0 envelope.

``POST /`` (also ``/?``) routes by the ``X-TC-Action`` header.  Every answer is HTTP 200 with
``Content-Type: application/json`` and ``{"Response": {..., "RequestId"}}``, or
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``, except for injected faults.
Introspection under ``/_emulator/`` and the image URLs are unsigned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_mps.emulator import validation
from airflow_provider_mps.emulator.exceptions import (
    InjectedError,
    InvalidActionError,
    InvalidParameterError,
    InvalidParameterValueError,
    MissingParameterError,
    MpsServiceError,
    TaskNotFoundError,
)
from airflow_provider_mps.emulator.knobs import DOWNLOAD_ACTION
from airflow_provider_mps.emulator.models import EmulatorBackend
from airflow_provider_mps.emulator.signature import secret_id_of, verify_request

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

API_VERSION = "2019-06-12"
#: ASGI scope extension under which the emulator's server exposes the connection's transport.
TRANSPORT_EXTENSION = "mps_emulator.transport"

_BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n"
)

Handler = Callable[[EmulatorBackend, str, dict[str, Any], str], dict[str, Any]]


def _create_aigc_image_task(
    backend: EmulatorBackend, secret_id: str, params: dict[str, Any], base_url: str
) -> dict[str, Any]:
    validation.validate_create_aigc_image_task(params)
    return {"TaskId": backend.create_task(secret_id, params)}


def _describe_aigc_image_task(
    backend: EmulatorBackend, secret_id: str, params: dict[str, Any], base_url: str
) -> dict[str, Any]:
    task_id = validation.validate_describe_aigc_image_task(params)
    return backend.describe_task(secret_id, task_id, base_url)


def _describe_transcode_templates(
    backend: EmulatorBackend, secret_id: str, params: dict[str, Any], base_url: str
) -> dict[str, Any]:
    validation.validate_describe_transcode_templates(params)
    return {"TotalCount": 0, "TranscodeTemplateSet": []}


ACTIONS: dict[str, Handler] = {
    "CreateAigcImageTask": _create_aigc_image_task,
    "DescribeAigcImageTask": _describe_aigc_image_task,
    "DescribeTranscodeTemplates": _describe_transcode_templates,
}


class DroppedConnection(Response):
    """
    Not a response: resets the TCP connection without answering.

    With ``half_body`` set, the status line, the headers (announcing the full length) and the
    first half of ``half_body`` are sent first and the connection is then closed normally, so
    the client sees a truncated body rather than a reset.
    """

    def __init__(self, half_body: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(half_body or b"", headers=headers)
        self.half_body = half_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reset the connection (after the partial body, if any) and wait for the disconnect."""
        transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        if transport is None:
            raise RuntimeError("Dropping a connection needs the emulator's own server (server.py).")
        if self.half_body is not None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send(
                {
                    "type": "http.response.body",
                    "body": self.half_body[: len(self.half_body) // 2],
                    "more_body": True,
                }
            )
            transport.close()  # FIN once the partial body is flushed
        else:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: closing sends a TCP RST at once instead of a FIN after buffered bytes.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        while (await receive())["type"] != "http.disconnect":
            pass


async def _gone(request: Request) -> str | None:
    """Return ``"client_disconnected"`` if the client has hung up, else ``None``."""
    return "client_disconnected" if await request.is_disconnected() else None


def _api_response(payload: dict[str, Any], request_id: str) -> JSONResponse:
    return JSONResponse({"Response": {**payload, "RequestId": request_id}})


def _error_response(code: str, message: str, request_id: str) -> JSONResponse:
    return JSONResponse({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}})


class EmulatorApp:
    """
    Build the emulator's ASGI application around a backend.

    :param backend: the state the app serves.
    :param public_url: base URL used in ``ImageUrls``; by default the scheme and ``Host`` the
        client addressed the emulator with.
    """

    def __init__(self, backend: EmulatorBackend, public_url: str | None = None) -> None:
        self.backend = backend
        self.public_url = public_url.rstrip("/") if public_url else None
        self.app = Starlette(
            routes=[
                Route("/", self.api, methods=["POST"]),
                Route("/images/{task_id}/{filename}", self.download_image, methods=["GET", "HEAD"]),
                Route("/_emulator/health", self.health, methods=["GET"]),
                Route("/_emulator/tasks", self.list_tasks, methods=["GET"]),
                Route("/_emulator/tasks/{task_id}/status", self.force_status, methods=["POST"]),
                Route("/_emulator/requests", self.list_requests, methods=["GET"]),
                Route("/_emulator/downloads", self.list_downloads, methods=["GET"]),
                Route("/_emulator/config", self.config, methods=["GET", "POST"]),
                Route("/_emulator/reset", self.reset, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        await self.app(scope, receive, send)

    def base_url(self, request: Request) -> str:
        """The base URL image links are built on."""
        if self.public_url:
            return self.public_url
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"{request.url.scheme}://{host}"

    # -- the API ------------------------------------------------------------------------------

    async def api(self, request: Request) -> Response:
        """Answer one API 3.0 call."""
        backend = self.backend
        received_at = time.time()
        request_id = str(uuid.uuid4())
        action = request.headers.get("x-tc-action", "")
        secret_id = secret_id_of(request.headers.get("authorization"))

        def record(error_code: str | None = None, fault: str | None = None) -> None:
            backend.record_request(
                action=action,
                secret_id=secret_id,
                received_at=received_at,
                error_code=error_code,
                request_id=request_id,
                fault=fault,
            )

        if backend.chance("drop_before_read_rate", action):
            record(fault="drop_before_read")
            return DroppedConnection()
        if backend.chance("html_5xx_rate", action):
            record(fault="html_5xx")
            return Response(_BAD_GATEWAY_PAGE, status_code=502, media_type="text/html")

        try:
            body = await request.body()
        except ClientDisconnect:
            record(fault="client_disconnected")
            return Response(b"", status_code=499)
        latency = float(backend.knobs.scoped("latency_seconds", action))
        if latency > 0:
            # The request is read and will be handled even if the client gives up meanwhile.
            await asyncio.sleep(latency)
        try:
            payload = self._handle(request, body, action)
        except InjectedError as exc:
            record(error_code=exc.code, fault="error")
            return _error_response(exc.code, exc.message, request_id)
        except MpsServiceError as exc:
            record(error_code=exc.code, fault=await _gone(request) if latency > 0 else None)
            return _error_response(exc.code, exc.message, request_id)
        except Exception as exc:
            log.exception("The emulator failed while handling %s", action)
            backend.server_errors.append(exc)
            record(error_code="InternalError")
            return _error_response("InternalError", f"The emulator failed: {exc!r}", request_id)
        if latency > 0 and await request.is_disconnected():
            record(fault="client_disconnected")
            return Response(b"", status_code=499)

        if backend.chance("drop_after_create_rate", action):
            record(fault="drop_after_create")
            return DroppedConnection()
        if backend.chance("malformed_body_rate", action):
            record(fault="malformed_body")
            truncated = json.dumps({"Response": {**payload, "RequestId": request_id}})[:-7]
            return Response(truncated.encode(), media_type="application/json")
        record()
        return _api_response(payload, request_id)

    def _handle(self, request: Request, body: bytes, action: str) -> dict[str, Any]:
        backend = self.backend
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not action:
            raise MissingParameterError("Action")
        secret_id = verify_request(
            method=request.method,
            path=request.url.path,
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            secret_key_for=backend.secret_key_for,
            token_for=backend.token_for,
            now=backend.now(),
        )
        version = headers.get("x-tc-version")
        if version is None:
            raise MissingParameterError("Version")
        if version != API_VERSION:
            raise InvalidParameterValueError(
                "Version", f"`{version}` is not {API_VERSION}, the MPS API version"
            )
        handler = ACTIONS.get(action)
        if handler is None:
            raise InvalidActionError(action)
        backend.take_quota(secret_id, action)
        injected = backend.injected_error_code(action)
        if injected is not None:
            raise InjectedError(injected)
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise InvalidParameterError(
                f"Content-Type `{content_type}` is not supported; send the parameters as application/json."
            )
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise InvalidParameterError("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise InvalidParameterError("The request body must be a JSON object of parameters.")
        return handler(backend, secret_id, params, self.base_url(request))

    # -- images ---------------------------------------------------------------------------------

    async def download_image(self, request: Request) -> Response:
        """Serve one generated image; 404 when unknown, not DONE or expired."""
        backend = self.backend
        task_id = request.path_params["task_id"]
        stem, _, ext = request.path_params["filename"].partition(".")
        latency = float(backend.knobs.scoped("latency_seconds", DOWNLOAD_ACTION))
        if latency > 0:
            await asyncio.sleep(latency)
        entry: dict[str, Any] = {"TaskId": task_id, "Path": request.url.path, "Time": time.time()}
        if backend.chance("drop_before_read_rate", DOWNLOAD_ACTION):
            backend.record_download({**entry, "StatusCode": None, "Fault": "drop_before_read"})
            return DroppedConnection()
        if backend.chance("html_5xx_rate", DOWNLOAD_ACTION):
            backend.record_download({**entry, "StatusCode": 502, "Fault": "html_5xx"})
            return Response(_BAD_GATEWAY_PAGE, status_code=502, media_type="text/html")
        found = backend.image(task_id, int(stem), ext) if stem.isdigit() else None
        if found is None:
            backend.record_download({**entry, "StatusCode": 404, "Fault": None})
            return Response(b"Not Found\n", status_code=404, media_type="text/plain")
        content, content_type = found
        headers = {"Content-Type": content_type, "Content-Length": str(len(content))}
        if request.method == "GET" and backend.chance("drop_after_create_rate", DOWNLOAD_ACTION):
            backend.record_download({**entry, "StatusCode": 200, "Fault": "truncated_body"})
            return DroppedConnection(half_body=content, headers=headers)
        backend.record_download({**entry, "StatusCode": 200, "Fault": None})
        if request.method == "HEAD":
            return Response(b"", headers=headers)
        return Response(content, media_type=content_type)

    # -- introspection --------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """Answer readiness probes."""
        return JSONResponse({"status": "ok"})

    async def list_tasks(self, request: Request) -> Response:
        """Every created task with its status and its request exactly as received."""
        return JSONResponse(self.backend.tasks(self.base_url(request)))

    async def list_requests(self, request: Request) -> Response:
        """Every API call received."""
        return JSONResponse(self.backend.requests())

    async def list_downloads(self, request: Request) -> Response:
        """Every image download attempted."""
        return JSONResponse(self.backend.downloads())

    async def config(self, request: Request) -> Response:
        """Read (GET) or change (POST a JSON object of knobs) the knobs."""
        if request.method == "GET":
            return JSONResponse(self.backend.config())
        return await _introspection_call(request, self.backend.configure)

    async def reset(self, request: Request) -> Response:
        """Forget all tasks, requests and quota use; restore the initial knobs."""
        self.backend.reset()
        return JSONResponse({"reset": True})

    async def force_status(self, request: Request) -> Response:
        """Pin a task to the POSTed ``{"Status": ..., "Message": ...}``."""
        task_id = request.path_params["task_id"]

        def apply(body: dict[str, Any]) -> dict[str, Any]:
            self.backend.force_status(task_id, body.get("Status", ""), body.get("Message"))
            return next(t for t in self.backend.tasks(self.base_url(request)) if t["TaskId"] == task_id)

        return await _introspection_call(request, apply)


async def _introspection_call(request: Request, action: Callable[[dict[str, Any]], Any]) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("The request body must be a JSON object.")
        return JSONResponse(action(body))
    except TaskNotFoundError as exc:
        return JSONResponse({"error": exc.message}, status_code=404)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(backend: EmulatorBackend, public_url: str | None = None) -> EmulatorApp:
    """Return the emulator's ASGI application serving ``backend``."""
    return EmulatorApp(backend, public_url)
