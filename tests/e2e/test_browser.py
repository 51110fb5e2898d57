"""A real headless Chromium follows share links through the landing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.factories import SECRET, STUDY_UID, share_body
from tests.servers import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
# Chromium as root needs --no-sandbox; the others keep it off the closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TITLE_EXPIRED = "Ce lien a expiré"
TITLE_INVALID = "Ce lien n'est pas valide"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stands in for the share Orthanc's Stone viewer: any page under this root."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = b"<!doctype html><title>Stone Web Viewer</title><p>viewer"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/shares/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, viewer: str
) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = tmp_path_factory.mktemp("browser-logs")
    landing_port = free_port()
    env = {
        "SECRET_KEY": SECRET,
        "PUBLIC_ORTHANC_ROOT": viewer,
        "PUBLIC_LANDING_ROOT": f"http://127.0.0.1:{landing_port}/share-landing/",
        "TITLE_EXPIRED_TOKEN": TITLE_EXPIRED,
        "TITLE_INVALID_TOKEN": TITLE_INVALID,
        "MESSAGE_INVALID_TOKEN": "Vérifiez le lien<br/>ou demandez-en un nouveau.",
    }
    started = {
        "token": start_service("token-service", env, log_dir),
        "landing": start_service("share-landing", env, log_dir, port=landing_port),
    }
    yield started
    for service in started.values():
        service.stop()


def test_valid_link_lands_on_the_viewer(
    page: Page, stack: dict[str, ServiceProcess], viewer: str
) -> None:
    created = httpx.put(f"{stack['token'].url}/shares", json=share_body()).json()
    page.goto(created["url"])
    assert page.url == (
        f"{viewer}stone-webviewer/index.html?study={STUDY_UID}&selectedStudies={STUDY_UID}"
        f"&token={created['token']}"
    )
    assert page.title() == "Stone Web Viewer"


def test_expired_link_shows_the_expired_page(
    page: Page, stack: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    expired = jwt.encode(
        {"studies": [{"dicom_uid": STUDY_UID}], "type": "stone-viewer-publication", "exp": 1000},
        SECRET,
        algorithm="HS256",
    )
    response = page.goto(f"{stack['landing'].url}/share-landing/?token={expired}")
    assert response is not None and response.status == 410
    assert page.title() == TITLE_EXPIRED
    assert page.locator("h1").inner_text() == TITLE_EXPIRED
    assert page.locator("html").get_attribute("lang") == "en"
    page.screenshot(path=str(tmp_path / "expired.png"))


def test_invalid_link_shows_the_invalid_page(page: Page, stack: dict[str, ServiceProcess]) -> None:
    response = page.goto(f"{stack['landing'].url}/share-landing/?token=not-a-real-token")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == TITLE_INVALID
    # The configured <br/> is rendered as a line break, not as text.
    assert page.locator("main p").inner_text() == "Vérifiez le lien\nou demandez-en un nouveau."
    assert page.locator("main p br").count() == 1


def test_pages_run_no_script_and_leak_no_referrer(
    page: Page, stack: dict[str, ServiceProcess]
) -> None:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(f"{stack['landing'].url}/share-landing/?token=<script>alert(1)</script>")
    assert response is not None
    assert response.headers["referrer-policy"] == "no-referrer"
    assert page.locator("script").count() == 0
    assert "alert" not in page.content()
    assert not any("Refused" in m for m in messages), messages
