"""Binary DICOM (Part 10, WADO-RS multipart, zip archives) through pydicom."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pydicom
import pytest

from anonymizer.dicom_files import (
    ArchiveTooLargeError,
    NotDicomError,
    anonymize_archive,
    anonymize_dataset,
    anonymize_dicom_multipart,
    anonymize_part10,
)
from anonymizer.dicom_json import anonymize_dataset_json
from anonymizer.multipart import Part, build_multipart, parse_multipart
from tests.anonymizer import samples
from tests.anonymizer.conftest import pseudonymizer


def test_part10_leaks_nothing_and_stays_readable() -> None:
    pseudo = pseudonymizer()
    source = samples.planted_part10()
    assert set(samples.leaks(source)) == set(samples.PLANTED)

    result = anonymize_part10(source, pseudo)

    assert samples.leaks(result) == []
    ds = pydicom.dcmread(io.BytesIO(result))
    assert ds.SOPInstanceUID == pseudo.uid(samples.INSTANCE)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == pseudo.uid(
        samples.OTHER_INSTANCE
    )
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == pydicom.uid.MRImageStorage
    assert ds.StudyDate == pseudo.shift_date(samples.STUDY_DATE)
    assert ds.PixelData == samples.planted_dataset().PixelData
    assert ds.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert not any(element.tag.is_private for element in ds.iterall())


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    """DICOM JSON where an empty sequence and a sequence without value are the same."""
    result = {}
    for key, element in document.items():
        element = dict(element)
        if element.get("Value") == []:
            del element["Value"]
        if element.get("vr") == "SQ" and "Value" in element:
            element["Value"] = [_normalised(item) for item in element["Value"]]
        result[key] = element
    return result


def test_binary_and_json_rules_agree() -> None:
    pseudo = pseudonymizer()
    dataset = samples.planted_dataset()
    anonymize_dataset(dataset, pseudo, markers=False)

    from_binary = dataset.to_json_dict(
        bulk_data_threshold=4, bulk_data_element_handler=lambda e: ""
    )
    from_json = anonymize_dataset_json(samples.planted_json(), pseudo)

    from_binary.pop("7FE00010")
    from_json.pop("7FE00010")
    assert _normalised(from_binary) == _normalised(from_json)


def test_not_dicom_is_refused() -> None:
    with pytest.raises(NotDicomError):
        anonymize_part10(b"%PDF-1.4 not dicom", pseudonymizer())


def test_wado_rs_multipart() -> None:
    pseudo = pseudonymizer()
    body, content_type = build_multipart(
        [
            Part(
                (("Content-Type", "application/dicom"), ("Content-Location", samples.bulk_uri())),
                samples.planted_part10(),
            )
        ]
        * 2,
        "multipart/related",
        "application/dicom",
    )
    assert samples.leaks(body)

    result, result_type = anonymize_dicom_multipart(body, content_type, pseudo)

    assert samples.leaks(result) == []
    assert result_type.startswith('multipart/related; type="application/dicom"; boundary=')
    boundary = result_type.rsplit("boundary=", 1)[1]
    parts = parse_multipart(result, boundary)
    assert len(parts) == 2
    assert parts[0].header("content-location") is None
    assert parts[0].header("content-length") == str(len(parts[0].body))
    assert pydicom.dcmread(io.BytesIO(parts[1].body)).SOPInstanceUID == pseudo.uid(samples.INSTANCE)


def test_multipart_with_another_part_type_is_refused() -> None:
    body, content_type = build_multipart(
        [Part((("Content-Type", "application/pdf"),), b"%PDF")],
        "multipart/related",
        "application/dicom",
    )

    with pytest.raises(NotDicomError):
        anonymize_dicom_multipart(body, content_type, pseudonymizer())


def _orthanc_archive(*extra: tuple[str, bytes]) -> bytes:
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w") as archive:
        folder = "PID-4711 DOE JANE/ACC-9999 KNEE OF JANE/MR SERIES"
        archive.writestr(f"{folder}/MR000000.dcm", samples.planted_part10())
        archive.writestr(f"{folder}/MR000001.dcm", samples.planted_part10())
        archive.writestr(
            "PID-4711 DOE JANE/ACC-9999 KNEE OF JANE/CT OTHER/CT000000.dcm",
            samples.planted_part10(),
        )
        for name, data in extra:
            archive.writestr(name, data)
        archive.comment = b"DOE^JANE"
    return source.getvalue()


def test_archive_entries_are_anonymized_and_renamed() -> None:
    pseudo = pseudonymizer()
    target = io.BytesIO()

    anonymize_archive(
        io.BytesIO(_orthanc_archive(("DICOMDIR", b"DOE^JANE"))), target, pseudo, 10**8
    )

    with zipfile.ZipFile(io.BytesIO(target.getvalue())) as archive:
        names = archive.namelist()
        assert names == [
            "ANONYMIZED/SERIES001/IMAGE00001.dcm",
            "ANONYMIZED/SERIES001/IMAGE00002.dcm",
            "ANONYMIZED/SERIES002/IMAGE00001.dcm",
        ]
        assert archive.comment == b""
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            data = archive.read(info)
            assert samples.leaks(data) == []
            assert pydicom.dcmread(io.BytesIO(data)).PatientIdentityRemoved == "YES"
    assert samples.leaks(target.getvalue()) == []


def test_archive_over_the_cap_is_refused() -> None:
    with pytest.raises(ArchiveTooLargeError):
        anonymize_archive(io.BytesIO(_orthanc_archive()), io.BytesIO(), pseudonymizer(), 1000)
