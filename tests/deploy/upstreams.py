"""Stand-in upstreams for nginx: loopback HTTP servers that record what reaches them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Answer", "Received", "RecordingUpstream", "running_upstream"]


@dataclass(frozen=True)
class Received:
    """A request as the upstream saw it (header names lower-cased)."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})
    body: bytes = b"ok\n"


Responder = Callable[[Received], Answer]


class RecordingUpstream:
    """A threaded HTTP server on 127.0.0.1 answering every method with `respond`."""

    def __init__(self, name: str, respond: Responder | None = None) -> None:
        self.name = name
        self.received: list[Received] = []
        responder: Responder = respond or (lambda _: Answer(body=f"{name}\n".encode()))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Received(
                    method=self.command,
                    target=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                owner.received.append(seen)
                answer = responder(seen)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_one

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """host:port, the form the nginx templates take."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_upstream(name: str, respond: Responder | None = None) -> Iterator[RecordingUpstream]:
    upstream = RecordingUpstream(name, respond)
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()
