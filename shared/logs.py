"""Logging setup and the filter that keeps tokens out of every log line."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactTokens", "configure_logging", "install_redaction", "redact"]

_PATTERNS = (
    # token=... in query strings (share links, viewer URLs, access-log request lines)
    re.compile(r"(?i)(token=)[^&\s\"'#]+"),
    # Authorization / token header values
    re.compile(r"(?i)\b(bearer |basic )[A-Za-z0-9._~+/=-]+"),
    # anything shaped like a JWT
    re.compile(r"()eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),
)


def redact(text: str) -> str:
    """Replace token-like substrings with a fixed marker."""
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # Arguments stay arguments (uvicorn's access formatter unpacks them); one whose
        # text carries a token, whatever its type (an httpx.URL, an exception), is
        # replaced by its redacted text.
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_argument(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_argument(v) for k, v in record.args.items()}
        return True


def _redact_argument(value: object) -> object:
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    cleaned = redact(text)
    return cleaned if cleaned != text or isinstance(value, str) else value


_FILTER = RedactTokens()
_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "httpcore", "fastapi", "")


def install_redaction() -> None:
    """Attach the filter to the loggers that may see URLs or headers and to the root
    handlers (a logger's filter does not see records from its children); idempotent."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    # httpx logs every request URL at INFO; a MedDream or Orthanc URL may carry a token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def configure_logging(level: str) -> None:
    """Configure the root logger; only entry points call this."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
