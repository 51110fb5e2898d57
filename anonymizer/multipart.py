"""multipart/related bodies (WADO-RS): parsing, building, and a streaming part-header filter.

WADO-RS frame and bulk-data answers carry pixel data, which needs no rewriting, but
Orthanc's DICOMweb plugin gives every part a `Content-Location` header naming the real
study, series and instance UIDs. `PartHeaderFilter` passes the parts' bytes through as
they arrive and rewrites only their headers, keeping `Content-Type` alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "KEPT_PART_HEADERS",
    "MultipartError",
    "Part",
    "PartHeaderFilter",
    "boundary_of",
    "build_multipart",
    "parse_multipart",
]

KEPT_PART_HEADERS = frozenset({"content-type"})
MAX_PART_HEADER_BYTES = 16 * 1024
CRLF = b"\r\n"


class MultipartError(ValueError):
    """A body that is not the multipart message its Content-Type announces."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part: its headers (lower-cased names) and its body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, if present."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def _params(content_type: str) -> tuple[str, dict[str, str]]:
    media, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        name, sep, value = item.strip().partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), params


def boundary_of(content_type: str) -> str | None:
    """The boundary of a multipart Content-Type, or None if it is not multipart."""
    media, params = _params(content_type)
    if not media.startswith("multipart/"):
        return None
    boundary = params.get("boundary")
    return boundary if boundary and len(boundary) <= 200 else None


def _parse_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    headers = []
    for line in block.split(CRLF):
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise MultipartError("a part header has no colon")
        headers.append((name.strip().lower(), value.strip()))
    return tuple(headers)


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body (preamble and epilogue ignored)."""
    delimiter = CRLF + b"--" + boundary.encode("latin-1")
    chunks = (CRLF + body).split(delimiter)
    if len(chunks) < 2:
        raise MultipartError("no boundary in the body")
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        line_end = chunk.find(CRLF)
        if line_end < 0:
            raise MultipartError("a boundary line is not terminated")
        content = chunk[line_end + 2 :]
        head_end = content.find(CRLF + CRLF)
        headers: tuple[tuple[str, str], ...]
        if content.startswith(CRLF):
            headers, payload = (), content[2:]
        elif head_end < 0:
            raise MultipartError("a part has no end of headers")
        else:
            headers, payload = _parse_headers(content[:head_end]), content[head_end + 4 :]
        parts.append(Part(headers, payload))
    raise MultipartError("the closing boundary is missing")


def build_multipart(parts: Iterable[Part], media: str, part_type: str) -> tuple[bytes, str]:
    """A multipart/related body with a fresh boundary, and its Content-Type."""
    boundary = secrets.token_hex(24)
    out = bytearray()
    for part in parts:
        out += b"--" + boundary.encode() + CRLF
        for name, value in part.headers:
            out += f"{name}: {value}".encode("latin-1") + CRLF
        out += f"Content-Length: {len(part.body)}".encode() + CRLF + CRLF
        out += part.body + CRLF
    out += b"--" + boundary.encode() + b"--" + CRLF
    return bytes(out), f'{media}; type="{part_type}"; boundary={boundary}'


class PartHeaderFilter:
    """Rewrites the part headers of a multipart stream, passing part bodies through.

    Feed it the body in chunks of any size; it returns what can be sent so far, holding
    back at most one delimiter's length of body bytes (in case a delimiter straddles two
    chunks) and the headers of the part being read.
    """

    def __init__(self, boundary: str, keep: frozenset[str] = KEPT_PART_HEADERS) -> None:
        self._delimiter = CRLF + b"--" + boundary.encode("latin-1")
        self._keep = keep
        # The body starts right at a delimiter without its leading CRLF: pretend it had one.
        self._buffer = bytearray(CRLF)
        self._state = "body"  # "body", "line", "headers", "done"
        self._started = False

    def feed(self, chunk: bytes) -> bytes:
        """Accept a chunk and return the bytes ready to send."""
        self._buffer += chunk
        out = bytearray()
        while True:
            if self._state == "body":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    keep = len(self._delimiter) - 1
                    ready = max(0, len(self._buffer) - keep)
                    if self._started:
                        out += self._buffer[:ready]
                    del self._buffer[:ready]
                    return bytes(out)
                if self._started:
                    out += self._buffer[:at]
                out += self._delimiter if self._started else self._delimiter[2:]
                del self._buffer[: at + len(self._delimiter)]
                self._started = True
                self._state = "line"
            elif self._state == "line":
                if len(self._buffer) < 2:
                    return bytes(out)
                if self._buffer.startswith(b"--"):
                    out += b"--" + CRLF
                    self._state = "done"
                    continue
                end = self._buffer.find(CRLF)
                if end < 0:
                    if len(self._buffer) > MAX_PART_HEADER_BYTES:
                        raise MultipartError("a boundary line is too long")
                    return bytes(out)
                # Transport padding after the boundary is dropped.
                del self._buffer[: end + 2]
                out += CRLF
                self._state = "headers"
            elif self._state == "headers":
                if self._buffer.startswith(CRLF):
                    end, block = 0, b""
                else:
                    end = self._buffer.find(CRLF + CRLF)
                    if end < 0:
                        if len(self._buffer) > MAX_PART_HEADER_BYTES:
                            raise MultipartError("part headers are too long")
                        return bytes(out)
                    block = bytes(self._buffer[:end])
                    end += 2
                for name, value in _parse_headers(block):
                    if name in self._keep:
                        out += f"{name}: {value}".encode("latin-1") + CRLF
                out += CRLF
                del self._buffer[: end + 2]
                self._state = "body"
            else:
                # Epilogue: dropped.
                self._buffer.clear()
                return bytes(out)

    def close(self) -> bytes:
        """The end of the stream; raise MultipartError if it was cut short."""
        if self._state != "done":
            raise MultipartError("the multipart stream ended before its closing boundary")
        return b""
