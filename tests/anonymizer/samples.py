"""A DICOM instance with identifying values planted everywhere a viewer could see them."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

STUDY = "1.2.826.0.1.3680043.8.498.1001"
SERIES = "1.2.826.0.1.3680043.8.498.1002"
INSTANCE = "1.2.826.0.1.3680043.8.498.1003"
OTHER_INSTANCE = "1.2.826.0.1.3680043.8.498.1004"
FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.1005"
STUDY_DATE = "20240315"

# Each must be gone from every anonymized representation.
PLANTED = (
    "DOE^JANE",
    "PID-4711",
    "19700101",
    "12 RUE DES LILAS",
    "ST ELSEWHERE HOSPITAL",
    "DR^WHO",
    "ACC-9999",
    "KNEE OF JANE",
    "COMMENT ABOUT JANE",
    "SECRET-PRIVATE",
    "NURSE^RATCHED",
    "JANE IS FINE",
    "OTHER-PID-1",
    "SENDING-AE",
    STUDY,
    SERIES,
    INSTANCE,
    OTHER_INSTANCE,
    FRAME_OF_REFERENCE,
    STUDY_DATE,
)


def planted_dataset() -> Dataset:
    """An MR image whose patient, study, sequences and private tags identify Jane Doe."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = UID(INSTANCE)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "SENDING-AE"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = INSTANCE
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "PID-4711"
    ds.PatientBirthDate = "19700101"
    ds.PatientAddress = "12 RUE DES LILAS"
    ds.PatientSex = "F"
    ds.StudyDate = STUDY_DATE
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-9999"
    ds.InstitutionName = "ST ELSEWHERE HOSPITAL"
    ds.ReferringPhysicianName = "DR^WHO"
    ds.StudyDescription = "KNEE OF JANE"
    ds.ImageComments = "COMMENT ABOUT JANE"
    ds.Modality = "MR"
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.add_new(0x7FE00010, "OW", b"\x01\x00\x02\x00\x03\x00\x04\x00")
    block = ds.private_block(0x0009, "HOSPITAL PRIVATE", create=True)
    block.add_new(0x01, "LO", "SECRET-PRIVATE")

    other_ids = Dataset()
    other_ids.PatientID = "OTHER-PID-1"
    ds.OtherPatientIDsSequence = Sequence([other_ids])

    referenced = Dataset()
    referenced.ReferencedSOPClassUID = MRImageStorage
    referenced.ReferencedSOPInstanceUID = OTHER_INSTANCE
    ds.ReferencedImageSequence = Sequence([referenced])

    # A sequence the table does not list: its items are cleaned all the same.
    series_item = Dataset()
    series_item.SeriesInstanceUID = SERIES
    series_item.PatientName = "DOE^JANE"
    instance_item = Dataset()
    instance_item.ReferencedSOPClassUID = MRImageStorage
    instance_item.ReferencedSOPInstanceUID = OTHER_INSTANCE
    series_item.ReferencedInstanceSequence = Sequence([instance_item])
    ds.ReferencedSeriesSequence = Sequence([series_item])

    content = Dataset()
    content.PersonName = "NURSE^RATCHED"
    content.TextValue = "JANE IS FINE"
    ds.ContentSequence = Sequence([content])
    return ds


def planted_part10() -> bytes:
    """The planted instance as a DICOM file."""
    out = io.BytesIO()
    pydicom.dcmwrite(out, planted_dataset(), enforce_file_format=True)
    return out.getvalue()


def bulk_uri(tag: str = "7fe00010") -> str:
    """The BulkDataURI Orthanc gives the planted instance's pixel data."""
    return (
        f"http://orthanc:8042/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{INSTANCE}"
        f"/bulk/{tag}"
    )


def planted_json() -> dict[str, Any]:
    """The planted instance in DICOM JSON, as WADO-RS metadata gives it."""
    document: dict[str, Any] = planted_dataset().to_json_dict(
        bulk_data_threshold=4, bulk_data_element_handler=lambda element: bulk_uri()
    )
    return document


def leaks(text: str | bytes) -> list[str]:
    """The planted values found in a body."""
    data = text.encode() if isinstance(text, str) else text
    return [value for value in PLANTED if value.encode() in data]
