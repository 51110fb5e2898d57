"""The connection pool to Orthanc: kept-alive connections reused, closed ones noticed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from anonymizer.transport import POOL_LIMITS, CheapPollStream, UpstreamTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LoopbackOrthanc:
    """An HTTP/1.1 server on loopback that keeps connections alive unless told not to."""

    def __init__(self, close_after_answer: bool) -> None:
        self.close_after_answer = close_after_answer
        self.connections = 0
        self.closed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                # No `Connection: close`: the client believes it may reuse the connection.
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        self.closed.set()


@pytest.fixture
async def orthanc(request: pytest.FixtureRequest) -> AsyncIterator[tuple[LoopbackOrthanc, str]]:
    server = LoopbackOrthanc(close_after_answer=getattr(request, "param", False))
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server, f"http://127.0.0.1:{port}"


async def test_connections_are_kept_alive_and_checked_by_one_poll(
    orthanc: tuple[LoopbackOrthanc, str],
) -> None:
    server, url = orthanc
    async with httpx.AsyncClient(transport=UpstreamTransport(POOL_LIMITS)) as client:
        for _ in range(3):
            response = await client.get(f"{url}/system")
            assert response.text == "ok"
            assert isinstance(response.extensions["network_stream"], CheapPollStream)

    assert server.connections == 1


@pytest.mark.parametrize("orthanc", [True], indirect=True)
async def test_a_connection_orthanc_closed_is_not_reused(
    orthanc: tuple[LoopbackOrthanc, str],
) -> None:
    server, url = orthanc
    async with httpx.AsyncClient(transport=UpstreamTransport(POOL_LIMITS)) as client:
        assert (await client.get(f"{url}/system")).text == "ok"
        await asyncio.wait_for(server.closed.wait(), 5)
        await asyncio.sleep(0.05)  # the FIN reaches the client's socket

        # Reusing the closed connection would fail ("server disconnected").
        assert (await client.get(f"{url}/system")).text == "ok"

    assert server.connections == 2


def test_idle_connections_are_dropped_before_orthanc_drops_them() -> None:
    # Orthanc's KeepAliveTimeout is one second by default.
    assert POOL_LIMITS.keepalive_expiry is not None and POOL_LIMITS.keepalive_expiry < 1.0
    assert POOL_LIMITS.max_keepalive_connections == POOL_LIMITS.max_connections
