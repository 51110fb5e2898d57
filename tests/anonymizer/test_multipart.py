"""multipart/related: parsing, building, and the streaming part-header filter."""

from __future__ import annotations

import pytest

from anonymizer.multipart import (
    MultipartError,
    Part,
    PartHeaderFilter,
    boundary_of,
    build_multipart,
    parse_multipart,
)

BOUNDARY = "b0und4ry"
LOCATION = "http://orthanc/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/1"
PIXELS = bytes(range(256)) * 3 + b"\r\n--b0und4" + b"\r\n-"  # near-delimiters inside the data
FRAMES = (
    b"--b0und4ry\r\n"
    b"Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n"
    b"Content-Location: " + LOCATION.encode() + b"\r\n"
    b"\r\n" + PIXELS + b"\r\n"
    b"--b0und4ry\r\n"
    b"Content-Location: " + LOCATION.encode() + b"\r\n"
    b"content-type: application/octet-stream\r\n"
    b"\r\n" + PIXELS[::-1] + b"\r\n"
    b"--b0und4ry--\r\n"
)
EXPECTED = (
    b"--b0und4ry\r\n"
    b"content-type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n"
    b"\r\n" + PIXELS + b"\r\n"
    b"--b0und4ry\r\n"
    b"content-type: application/octet-stream\r\n"
    b"\r\n" + PIXELS[::-1] + b"\r\n"
    b"--b0und4ry--\r\n"
)


def run_filter(body: bytes, sizes: list[int]) -> bytes:
    part_filter = PartHeaderFilter(BOUNDARY)
    out = bytearray()
    position = 0
    for size in sizes:
        out += part_filter.feed(body[position : position + size])
        position += size
    out += part_filter.feed(body[position:])
    out += part_filter.close()
    return bytes(out)


def test_filter_drops_content_location_in_one_chunk() -> None:
    assert run_filter(FRAMES, []) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 11, 64, 500])
def test_filter_gives_the_same_bytes_whatever_the_chunking(size: int) -> None:
    assert run_filter(FRAMES, [size] * (len(FRAMES) // size)) == EXPECTED


def test_filter_splits_at_every_position() -> None:
    for cut in range(len(FRAMES)):
        assert run_filter(FRAMES, [cut]) == EXPECTED, cut


def test_filter_keeps_parts_and_drops_preamble_and_epilogue() -> None:
    body = b"preamble\r\n" + FRAMES + b"epilogue DOE^JANE"

    assert run_filter(body, [5]) == EXPECTED


def test_filter_passes_body_bytes_before_the_part_ends() -> None:
    part_filter = PartHeaderFilter(BOUNDARY)
    head = FRAMES[: FRAMES.index(PIXELS) + 300]

    out = part_filter.feed(head)

    # All but a delimiter's length of the pixel bytes received so far is already out.
    assert out.endswith(PIXELS[: 300 - (len("\r\n--" + BOUNDARY) - 1)])


def test_truncated_stream_is_an_error() -> None:
    part_filter = PartHeaderFilter(BOUNDARY)
    part_filter.feed(FRAMES[:-20])

    with pytest.raises(MultipartError):
        part_filter.close()


def test_endless_part_headers_are_an_error() -> None:
    part_filter = PartHeaderFilter(BOUNDARY)

    with pytest.raises(MultipartError):
        part_filter.feed(b"--b0und4ry\r\nX-Long: " + b"a" * 20000)


def test_parse_and_build_round_trip() -> None:
    parts = [Part((("content-type", "application/dicom"),), b"one\r\n--almost"), Part((), b"two")]

    body, content_type = build_multipart(parts, "multipart/related", "application/dicom")
    boundary = boundary_of(content_type)

    assert boundary is not None
    parsed = parse_multipart(body, boundary)
    assert [p.body for p in parsed] == [b"one\r\n--almost", b"two"]
    assert parsed[1].header("content-length") == "3"


@pytest.mark.parametrize(
    "body",
    [
        b"no boundary at all",
        b"--b0und4ry\r\nContent-Type: x\r\n\r\ndata without end",
        b"--b0und4ry",
    ],
)
def test_parse_malformed(body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_multipart(body, BOUNDARY)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ('multipart/related; type="application/dicom"; boundary=abc', "abc"),
        ('multipart/related; boundary="q u"', "q u"),
        ("application/json", None),
        ("multipart/related", None),
    ],
)
def test_boundary_of(content_type: str, boundary: str | None) -> None:
    assert boundary_of(content_type) == boundary
