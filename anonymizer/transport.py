"""The connection pool to the anonymized-share Orthanc: httpx's, with a cheaper idle check.

Before it reuses a kept-alive connection, and whenever it assigns or releases one,
httpcore asks every idle connection of the pool whether the server has closed it. Over
anyio that question builds a table of socket attributes and calls getpeername(2) before
the poll(2) that answers it; with a few idle connections it cost the anonymizer more
CPU per frame than its own checks. Here the same question is one poll(2) on the socket,
with the same answer. httpx offers no parameter for httpcore's network backend yet
(encode/httpx#3749), so the transport's pool is rebuilt over this one.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any

import httpcore
import httpx

__all__ = ["POOL_LIMITS", "CheapPollStream", "UpstreamTransport"]

# Connections to the anonymized-share Orthanc. A little above its 50 HTTP threads (the
# default HttpThreadsCount); all may stay open while busy, so a burst of frame requests
# does not reconnect. Idle ones are closed after half a second: Orthanc closes them
# after one (KeepAliveTimeout), and a request sent on a connection it is closing fails
# instead of being retried. Every idle connection is also polled on each request.
POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=0.5)


class CheapPollStream(httpcore.AsyncNetworkStream):
    """A connection of httpcore's anyio backend whose readability check is one poll."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return CheapPollStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            # Readable while idle: the server closed it (or sent what nobody asked for).
            fd = self._socket.fileno()
            if fd == -1:
                return True
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        return self._stream.get_extra_info(info)


class _CheapPollBackend(httpcore.AnyIOBackend):
    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return CheapPollStream(await super().connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return CheapPollStream(await super().connect_unix_socket(*args, **kwargs))


class UpstreamTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP/1.1 transport (no proxy from the environment) over `CheapPollStream`s."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        backend = _CheapPollBackend() if hasattr(select, "poll") else None
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
