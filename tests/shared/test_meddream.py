"""The client of the MedDream token service, against a mocked transport."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from shared.errors import ViewerUnavailableError
from shared.meddream import MedDreamClient

pytestmark = pytest.mark.anyio

URL = "http://meddream-token-service:8088/v3/generate"
MEDDREAM_TOKEN = "aGVsbG8+d29ybGQ/Zm9vYmFy+/Zm9v=="


@pytest.fixture
def router() -> Iterator[respx.Router]:
    """MedDream's token service; every route must be called, nothing else may be."""
    router = respx.Router(assert_all_called=True, assert_all_mocked=True)
    yield router
    router.assert_all_called()


@pytest.fixture
async def meddream(router: respx.Router) -> AsyncIterator[MedDreamClient]:
    transport = httpx.MockTransport(router.async_handler)
    async with httpx.AsyncClient(transport=transport, timeout=1.0) as client:
        yield MedDreamClient(URL, "Orthanc", client)


async def test_request_body_has_one_item_per_study(
    router: respx.Router, meddream: MedDreamClient
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200, text=MEDDREAM_TOKEN))

    await meddream.create_token(["1.2.3", "1.2.4"])

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "items": [
            {"studies": {"study": "1.2.3", "storage": "Orthanc"}},
            {"studies": {"study": "1.2.4", "storage": "Orthanc"}},
        ]
    }


async def test_storage_comes_from_the_configuration(router: respx.Router) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200, text=MEDDREAM_TOKEN))
    transport = httpx.MockTransport(router.async_handler)
    async with httpx.AsyncClient(transport=transport) as client:
        await MedDreamClient(URL, "PACS-2", client).create_token(["1.2.3"])

    body = json.loads(route.calls.last.request.content)
    assert body == {"items": [{"studies": {"study": "1.2.3", "storage": "PACS-2"}}]}


@pytest.mark.parametrize(
    "text",
    [MEDDREAM_TOKEN, f"{MEDDREAM_TOKEN}\n", f"  {MEDDREAM_TOKEN}\r\n\r\n"],
    ids=["bare", "newline", "spaces-crlf"],
)
async def test_token_is_the_stripped_response_text(
    router: respx.Router, meddream: MedDreamClient, text: str
) -> None:
    router.post(URL).mock(
        return_value=httpx.Response(200, text=text, headers={"content-type": "text/plain"})
    )

    assert await meddream.create_token(["1.2.3"]) == MEDDREAM_TOKEN


@pytest.mark.parametrize("status", [200, 201])
async def test_any_2xx_with_a_token_is_accepted(
    router: respx.Router, meddream: MedDreamClient, status: int
) -> None:
    router.post(URL).mock(return_value=httpx.Response(status, text=MEDDREAM_TOKEN))

    assert await meddream.create_token(["1.2.3"]) == MEDDREAM_TOKEN


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 500, 502, 503])
async def test_non_2xx_is_unavailable(
    router: respx.Router, meddream: MedDreamClient, status: int
) -> None:
    # Even when the error body looks like a token, it must not become a link.
    router.post(URL).mock(return_value=httpx.Response(status, text=MEDDREAM_TOKEN))

    with pytest.raises(ViewerUnavailableError):
        await meddream.create_token(["1.2.3"])


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   \n",
        "<html><body><h1>Whitelabel Error Page</h1></body></html>",
        "<!DOCTYPE html>",
        '{"error": "storage not found"}',
        '{"timestamp":"2024-01-01","status":500}',
        '"quoted-token"',
        "two words",
        "x" * 5000,
    ],
    ids=[
        "empty",
        "blank",
        "html",
        "doctype",
        "json-error",
        "json-spring",
        "json-string",
        "with-space",
        "too-long",
    ],
)
async def test_error_bodies_under_200_are_unavailable(
    router: respx.Router, meddream: MedDreamClient, body: str
) -> None:
    router.post(URL).mock(return_value=httpx.Response(200, text=body))

    with pytest.raises(ViewerUnavailableError):
        await meddream.create_token(["1.2.3"])


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.PoolTimeout("no connection available"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset"),
    ],
    ids=["connect", "connect-timeout", "read-timeout", "pool-timeout", "protocol", "read"],
)
async def test_transport_failures_are_unavailable(
    router: respx.Router, meddream: MedDreamClient, error: httpx.HTTPError
) -> None:
    router.post(URL).mock(side_effect=error)

    with pytest.raises(ViewerUnavailableError) as caught:
        await meddream.create_token(["1.2.3"])

    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_failures_log_no_token_or_url_details(
    router: respx.Router, meddream: MedDreamClient, caplog: pytest.LogCaptureFixture
) -> None:
    router.post(URL).mock(return_value=httpx.Response(500, text="secret-ish body"))

    with caplog.at_level(logging.WARNING, logger="shared.meddream"):
        with pytest.raises(ViewerUnavailableError):
            await meddream.create_token(["1.2.3"])

    assert "500" in caplog.text
    assert "secret-ish body" not in caplog.text
