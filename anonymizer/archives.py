"""Study and series archives: Orthanc's zip spooled to disk, de-identified into another.

An archive may be gigabytes: both zips live in spooled temporary files (memory up to
16 MiB, disk beyond), the rewrite runs in a worker thread, and the result is streamed
from its file, which is closed once sent.
"""

from __future__ import annotations

import tempfile
from typing import IO

import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from anonymizer.answers import NO_STORE, run_rewrite
from anonymizer.dicom_files import ArchiveTooLargeError, anonymize_archive
from anonymizer.errors import TooLargeError
from anonymizer.streams import iterate_file
from anonymizer.upstream import SPOOL_MEMORY_BYTES, Upstream
from shared.pseudonyms import Pseudonymizer

__all__ = ["archive_answer"]


def _new_spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115


async def archive_answer(
    response: httpx.Response, pseudo: Pseudonymizer, cap: int, name: str
) -> Response:
    """Orthanc's archive answer de-identified, as `{name}.zip`; TooLargeError past `cap`."""
    source = await Upstream.spool(response, cap)
    target: IO[bytes] | None = None
    try:
        target = await run_rewrite(_new_spool)
        await run_rewrite(anonymize_archive, source, target, pseudo, cap)
        target.seek(0)
    except ArchiveTooLargeError:
        if target is not None:
            target.close()
        raise TooLargeError("archive larger than the cap") from None
    except BaseException:
        if target is not None:
            target.close()
        raise
    finally:
        source.close()
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.zip"'}
    return StreamingResponse(
        iterate_file(target),
        media_type="application/zip",
        headers=headers,
        background=BackgroundTask(target.close),
    )
