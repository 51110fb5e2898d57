"""De-identification of DICOM instances: pydicom datasets, Part 10 files, WADO-RS
multipart answers and study archives (zip). Pure functions of their input and a share's
pseudonymizer; the rules are those of `profile`, as for the JSON representations."""

from __future__ import annotations

import io
import zipfile
from typing import IO

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from anonymizer.multipart import Part, boundary_of, build_multipart, parse_multipart
from anonymizer.profile import (
    DEIDENTIFICATION_CODES,
    DEIDENTIFICATION_METHOD,
    Action,
    action_for,
    anonymize_string,
    base_vr,
    dummy_value,
)
from shared.pseudonyms import Pseudonymizer

__all__ = [
    "ArchiveTooLargeError",
    "NotDicomError",
    "anonymize_archive",
    "anonymize_dataset",
    "anonymize_dicom_multipart",
    "anonymize_part10",
]

# File meta attributes kept (the rest names the sending system or carries private data).
_KEPT_META = frozenset(
    {
        0x00020001,  # FileMetaInformationVersion
        0x00020002,  # MediaStorageSOPClassUID
        0x00020003,  # MediaStorageSOPInstanceUID (replaced below)
        0x00020010,  # TransferSyntaxUID
        0x00020012,  # ImplementationClassUID
        0x00020013,  # ImplementationVersionName
    }
)
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class NotDicomError(ValueError):
    """Bytes that pydicom cannot read as a DICOM file."""


class ArchiveTooLargeError(ValueError):
    """An archive whose content exceeds the configured cap."""


def _element_value(element: DataElement, action: Action, vr: str, pseudo: Pseudonymizer) -> None:
    value = element.value
    if action is Action.EMPTY:
        element.value = [] if vr == "SQ" else None
        return
    if action is Action.DUMMY:
        element.value = dummy_value(vr)
        return
    if isinstance(value, MultiValue | list):
        changed = [anonymize_string(action, vr, str(v), pseudo) for v in value]
        element.value = [v for v in changed if v is not None]
    elif isinstance(value, str):
        element.value = anonymize_string(action, vr, value, pseudo)
    elif value is not None:
        # A UID, date or URL whose value pydicom did not decode as text.
        element.value = None


def anonymize_dataset(dataset: Dataset, pseudo: Pseudonymizer, *, markers: bool = True) -> None:
    """De-identify a dataset in place, at every nesting level (markers at the top only)."""
    for tag in list(dataset.keys()):
        element = dataset[tag]
        vr = base_vr(str(element.VR) if element.VR else None, int(tag))
        action = action_for(int(tag), vr)
        if action is Action.REMOVE:
            del dataset[tag]
        elif vr == "SQ":
            if action in (Action.KEEP, Action.CLEAN):
                for item in element.value or ():
                    anonymize_dataset(item, pseudo, markers=False)
            else:
                element.value = Sequence()
        elif action is not Action.KEEP or vr == "UR":
            _element_value(element, action, vr, pseudo)
    if markers:
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
        codes = []
        for value, scheme, meaning in DEIDENTIFICATION_CODES:
            code = Dataset()
            code.CodeValue = value
            code.CodingSchemeDesignator = scheme
            code.CodeMeaning = meaning
            codes.append(code)
        dataset.DeidentificationMethodCodeSequence = Sequence(codes)
        dataset.LongitudinalTemporalInformationModified = "MODIFIED"


def _clean_file_meta(meta: FileMetaDataset, dataset: Dataset) -> None:
    for tag in list(meta.keys()):
        if int(tag) not in _KEPT_META:
            del meta[tag]
    instance_uid = dataset.get("SOPInstanceUID")
    if instance_uid:
        meta.MediaStorageSOPInstanceUID = instance_uid


def anonymize_part10(data: bytes, pseudo: Pseudonymizer) -> bytes:
    """A DICOM Part 10 file de-identified, in its own transfer syntax."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as error:
        raise NotDicomError("not a readable DICOM file") from error
    anonymize_dataset(dataset, pseudo)
    if getattr(dataset, "file_meta", None) is not None:
        _clean_file_meta(dataset.file_meta, dataset)
    # The preamble may carry anything (TIFF headers, vendor data): zero it.
    dataset.preamble = b"\x00" * 128
    out = io.BytesIO()
    pydicom.dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


def anonymize_dicom_multipart(
    body: bytes, content_type: str, pseudo: Pseudonymizer
) -> tuple[bytes, str]:
    """A WADO-RS `multipart/related; type="application/dicom"` answer, de-identified."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise NotDicomError("not a multipart answer")
    parts = []
    for part in parse_multipart(body, boundary):
        kind = (part.header("content-type") or "application/dicom").split(";")[0].strip()
        if kind.lower() != "application/dicom":
            raise NotDicomError("a part is not application/dicom")
        parts.append(
            Part((("Content-Type", "application/dicom"),), anonymize_part10(part.body, pseudo))
        )
    return build_multipart(parts, "multipart/related", "application/dicom")


def anonymize_archive(
    source: IO[bytes], target: IO[bytes], pseudo: Pseudonymizer, max_bytes: int
) -> None:
    """A study or series zip archive with its DICOM files de-identified and renamed.

    Orthanc names entries after the patient, the accession number and the descriptions:
    entries are renamed `ANONYMIZED/SERIES{n}/IMAGE{m}.dcm` (in the archive's order),
    their times fixed, and anything that is not a DICOM file (a DICOMDIR) dropped.
    """
    with zipfile.ZipFile(source) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if sum(info.file_size for info in entries) > max_bytes:
            raise ArchiveTooLargeError("archive larger than the cap")
        series_numbers: dict[str, int] = {}
        counts: dict[int, int] = {}
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in entries:
                with archive.open(info) as member:
                    data = member.read(max_bytes + 1)
                try:
                    anonymized = anonymize_part10(data, pseudo)
                except NotDicomError:
                    continue
                folder = info.filename.rsplit("/", 1)[0] if "/" in info.filename else ""
                series = series_numbers.setdefault(folder, len(series_numbers) + 1)
                counts[series] = counts.get(series, 0) + 1
                name = f"ANONYMIZED/SERIES{series:03d}/IMAGE{counts[series]:05d}.dcm"
                entry = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(entry, anonymized)
