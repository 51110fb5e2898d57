"""Tokens and credentials never reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from shared.logs import RedactTokens, install_redaction, redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpZCI6InRvdG8iLCJ0eXBlIjoic3RvbmUtdmlld2VyLXB1YmxpY2F0aW9uIn0."
    "0ymBXIpW5o1fT1Rre0pvRMWd2fGwsBPwhSI9F1kNzmE"
)
BASIC = "c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA=="  # share-user:share-password
MEDDREAM = "aGVsbG8+d29ybGQ/Zm9vYmFy+/=="  # an opaque MedDream token


class ListHandler(logging.Handler):
    """Keeps the formatted lines it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def redacting_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    """A logger of its own with the filter, and a handler that keeps formatted lines."""
    logger = logging.getLogger("tests.shared.redacting")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.addFilter(RedactTokens())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


# --- redact -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"https://pacs.example.org/welcome/?token={JWT}",
            "https://pacs.example.org/welcome/?token=[redacted]",
        ),
        (
            f"/stone-webviewer/index.html?study=1.2&token={JWT}&x=1",
            "/stone-webviewer/index.html?study=1.2&token=[redacted]&x=1",
        ),
        (
            f"/meddream/?study=1.2,1.3&token={MEDDREAM}",
            "/meddream/?study=1.2,1.3&token=[redacted]",
        ),
        ("/meddream/?TOKEN=abc#top", "/meddream/?TOKEN=[redacted]#top"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [redacted]"),
        (f"authorization: bearer {MEDDREAM}", "authorization: bearer [redacted]"),
        (f"Authorization: Basic {BASIC}", "Authorization: Basic [redacted]"),
        (f"BASIC {BASIC}", "BASIC [redacted]"),
        (f"token-value={JWT!r}", "token-value='[redacted]'"),
        (f"decoded {JWT} for you", "decoded [redacted] for you"),
        (f'{{"token": "{JWT}"}}', '{"token": "[redacted]"}'),
        ("nothing secret here: study 1.2.840 level=study", None),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    result = redact(text)

    assert result == (text if expected is None else expected)


@pytest.mark.parametrize(
    "secret",
    [JWT, BASIC, MEDDREAM, JWT.split(".")[1], JWT.split(".")[2]],
    ids=["jwt", "basic", "meddream", "jwt-payload", "jwt-signature"],
)
@pytest.mark.parametrize(
    "template",
    [
        "GET /welcome/?token={} HTTP/1.1",
        "Bearer {}",
        "Basic {}",
        "token={}",
    ],
)
def test_redact_removes_every_part_of_the_secret(template: str, secret: str) -> None:
    assert secret not in redact(template.format(secret))


def test_redact_removes_a_bare_jwt_of_the_original_service() -> None:
    text = f"the original logged the raw token: {JWT}"

    assert JWT not in redact(text)
    assert redact(text).startswith("the original logged the raw token: ")


# --- RedactTokens -----------------------------------------------------------------------


def test_filter_redacts_the_message(
    redacting_logger: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = redacting_logger

    logger.info(f"opening https://pacs.example.org/welcome/?token={JWT}")

    assert handler.lines == ["opening https://pacs.example.org/welcome/?token=[redacted]"]


def test_filter_redacts_tuple_args(redacting_logger: tuple[logging.Logger, ListHandler]) -> None:
    logger, handler = redacting_logger

    logger.warning("header %s, value %s, status %d", f"Bearer {JWT}", f"Basic {BASIC}", 401)

    assert handler.lines == ["header Bearer [redacted], value Basic [redacted], status 401"]


def test_filter_redacts_dict_args(redacting_logger: tuple[logging.Logger, ListHandler]) -> None:
    logger, handler = redacting_logger

    logger.info("%(url)s answered %(status)d", {"url": f"/?token={JWT}", "status": 307})

    assert handler.lines == ["/?token=[redacted] answered 307"]


def test_filter_redacts_a_uvicorn_access_log_record(
    redacting_logger: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = redacting_logger
    path = f"/share-landing/?token={JWT}"

    # uvicorn.protocols.http: access_logger.info('%s - "%s %s HTTP/%s" %d', ...)
    logger.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:52100", "GET", path, "1.1", 307)

    assert handler.lines == [
        '203.0.113.7:52100 - "GET /share-landing/?token=[redacted] HTTP/1.1" 307'
    ]


def test_filter_keeps_every_record(redacting_logger: tuple[logging.Logger, ListHandler]) -> None:
    logger, handler = redacting_logger
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain %s", ("text",), None)

    assert RedactTokens().filter(record) is True
    logger.info("plain %s", "text")
    assert handler.lines == ["plain text"]


def test_filter_redacts_arguments_that_are_not_strings(
    redacting_logger: tuple[logging.Logger, ListHandler],
) -> None:
    # URL objects (httpx, Starlette) and exceptions carry tokens in their text too.
    logger, handler = redacting_logger
    url = httpx.URL(f"https://pacs.example.org/welcome/?token={JWT}")

    logger.warning("cannot open %s: %s", url, ValueError(f"bad link /?token={JWT}"))

    assert len(handler.lines) == 1
    assert JWT not in handler.lines[0]


def test_uvicorn_access_formatter_still_formats_redacted_records(
    redacting_logger: tuple[logging.Logger, ListHandler],
) -> None:
    # uvicorn's AccessFormatter unpacks record.args: redaction must keep them a tuple.
    from uvicorn.logging import AccessFormatter

    logger, handler = redacting_logger
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    logger.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/welcome/?token={JWT}", "1.1", 307
    )
    assert handler.lines == [
        '127.0.0.1:5000 - "GET /welcome/?token=[redacted] HTTP/1.1" 307 Temporary Redirect'
    ]


# --- install_redaction ------------------------------------------------------------------


@pytest.fixture
def installed() -> Iterator[ListHandler]:
    """install_redaction() with a handler on the root logger; everything undone after."""
    root = logging.getLogger()
    handler = ListHandler()
    root.addHandler(handler)
    names = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "httpcore", "fastapi", "")
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).filters))
        for name in names
    }
    saved_handler_filters = {h: list(h.filters) for h in root.handlers}
    try:
        install_redaction()
        yield handler
    finally:
        root.removeHandler(handler)
        for name, (level, filters) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.filters[:] = filters
        for each, filters in saved_handler_filters.items():
            each.filters[:] = filters


def test_install_redaction_covers_the_uvicorn_access_log(installed: ListHandler) -> None:
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/?token={JWT}", "1.1", 200)
    finally:
        access.setLevel(logging.NOTSET)

    assert installed.lines == ['127.0.0.1:1 - "GET /?token=[redacted] HTTP/1.1" 200']


def test_install_redaction_quiets_httpx(installed: ListHandler) -> None:
    # httpx logs every request URL at INFO.
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore.http11").getEffectiveLevel() == logging.WARNING


def test_install_redaction_is_idempotent(installed: ListHandler) -> None:
    install_redaction()

    for name in ("uvicorn.access", ""):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RedactTokens) for f in filters) == 1


def test_install_redaction_covers_every_module_logger(installed: ListHandler) -> None:
    # Filters on a logger do not apply to records propagated from its children, so a
    # filter on the root logger alone misses `token_service.routes`, `shared.meddream`...
    child = logging.getLogger("token_service.some_module")
    child.setLevel(logging.INFO)
    try:
        child.info("redirecting to %s", f"https://pacs.example.org/?token={JWT}")
    finally:
        child.setLevel(logging.NOTSET)

    assert len(installed.lines) == 1
    assert JWT not in installed.lines[0]
