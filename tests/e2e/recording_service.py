"""A stand-in token service that records what the authorization emulator sends it.

It runs ``http.server`` in a thread on a loopback port. Each request is recorded (method,
path, headers, body) *before* the answer is written, so by the time Orthanc has answered the
test's request, every validation call it made is visible. Answers are configured per path,
either as a fixed ``Reply`` or as a function of the recorded request.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["RecordedRequest", "RecordingService", "Reply", "Responder"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request received by the service."""

    method: str
    path: str  # with its query string, if any
    headers: tuple[tuple[str, str], ...]  # as received, in order
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), or None."""
        values = self.header_values(name)
        return values[-1] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the service answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay_seconds: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, *, status: int = 200, delay_seconds: float = 0.0) -> Reply:
        """A JSON answer."""
        return cls(status=status, body=json.dumps(payload).encode(), delay_seconds=delay_seconds)


Responder = Reply | Callable[[RecordedRequest], Reply]
NOT_FOUND = Reply(status=404, body=b'{"detail":"Not Found"}')


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=tuple(self.headers.items()),
            body=self.rfile.read(length),
        )
        reply = self.server.owner.record_and_reply(request)
        if reply.delay_seconds and self.server.owner.stopping.wait(reply.delay_seconds):
            return  # the service is stopping: drop the connection
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line (it would show token-bearing paths)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: RecordingService) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (e.g. the emulator's timeout) closes the socket before we
        # answer; that is expected here, anything else is reported as usual.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RecordingService:
    """Records requests and answers them from per-path responders (unknown paths: 404)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._responders: dict[str, Responder] = {}
        self.stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="recording-service", daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RecordingService:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def respond(self, path: str, responder: Responder) -> None:
        """Answer requests on ``path`` (query string ignored) with ``responder``."""
        with self._lock:
            self._responders[path] = responder

    def reset(self) -> None:
        """Forget recorded requests and responders."""
        with self._lock:
            self._requests.clear()
            self._responders.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests recorded so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests on one path (query string ignored)."""
        return [request for request in self.requests if request.path.split("?")[0] == path]

    def clear(self) -> None:
        """Forget recorded requests, keep responders."""
        with self._lock:
            self._requests.clear()

    def record_and_reply(self, request: RecordedRequest) -> Reply:
        """Record ``request`` and choose its reply (called from the handler threads)."""
        with self._lock:
            self._requests.append(request)
            responder = self._responders.get(request.path.split("?")[0], NOT_FOUND)
        return responder(request) if callable(responder) else responder
