"""Requests to Orthanc and answers streamed back: URLs, timeouts, and closing the upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Message

from anonymizer.multipart import PartHeaderFilter
from anonymizer.streams import UNWATCHED_BYTES, stream_through
from anonymizer.upstream import Upstream

pytestmark = pytest.mark.anyio

SCOPE: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.3"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def upstream_answer(
    body: AsyncIterator[bytes], length: int | None, content_type: str = "image/jpeg"
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if length is not None:
        headers["Content-Length"] = str(length)
    return httpx.Response(200, content=body, headers=headers)


async def parts(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class Client:
    """The ASGI side: what was sent, and whether anyone listened for a disconnect."""

    def __init__(self, disconnect: bool = False) -> None:
        self.sent: list[Message] = []
        self.listened = False
        self.disconnect = disconnect

    async def receive(self) -> Message:
        self.listened = True
        if not self.disconnect:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_stream_through_does_not_wait_for_the_whole_body() -> None:
    produced: list[str] = []

    async def upstream_body() -> AsyncIterator[bytes]:
        produced.append("first")
        yield b"first"
        produced.append("second")
        yield b"second"

    response = httpx.Response(200, content=upstream_body(), headers={"Content-Type": "image/png"})
    streamed = stream_through(response)
    chunks = streamed.body_iterator.__aiter__()

    assert await chunks.__anext__() == b"first"
    assert produced == ["first"]
    assert await chunks.__anext__() == b"second"


async def test_a_small_answer_is_sent_without_watching_the_client() -> None:
    response = upstream_answer(parts(b"fr", b"ame"), 5)
    client = Client()

    await stream_through(response)(SCOPE, client.receive, client.send)

    assert client.body == b"frame"
    assert not client.listened
    assert response.is_closed


@pytest.mark.parametrize("length", [None, UNWATCHED_BYTES + 1])
async def test_a_large_or_unannounced_answer_stops_when_the_client_leaves(
    length: int | None,
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 1024
            await asyncio.sleep(0)

    response = upstream_answer(endless(), length)
    client = Client(disconnect=True)

    await asyncio.wait_for(stream_through(response)(SCOPE, client.receive, client.send), 5)

    assert client.listened
    assert response.is_closed


async def test_the_upstream_is_closed_when_the_stream_fails() -> None:
    async def cut_short() -> AsyncIterator[bytes]:
        yield b"--xyz\r\ncontent-type: application/octet-stream\r\n\r\nPIX"
        raise httpx.ReadError("connection reset")

    response = upstream_answer(cut_short(), 100, "multipart/related; boundary=xyz")
    client = Client()

    with pytest.raises(httpx.ReadError):
        await stream_through(response, PartHeaderFilter("xyz"))(SCOPE, client.receive, client.send)

    assert response.is_closed


async def test_paths_join_the_upstream_root_with_the_query_encoded() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    timeout = httpx.Timeout(7.0, connect=2.0)
    async with httpx.AsyncClient(
        base_url="http://orthanc-anon:8042/orthanc/",
        transport=httpx.MockTransport(handler),
        timeout=timeout,
    ) as client:
        upstream = Upstream(client)
        await upstream.open("/dicom-web/studies/1.2.3/rendered", [("viewport", "64,64")], {})
        await upstream.open("/system", (), {"Accept": "application/json"})

    first, second = seen
    assert first.url.path == "/orthanc/dicom-web/studies/1.2.3/rendered"
    assert first.url.params["viewport"] == "64,64"
    assert str(second.url) == "http://orthanc-anon:8042/orthanc/system"
    assert second.headers["accept"] == "application/json"
    assert first.extensions["timeout"] == timeout.as_dict()
