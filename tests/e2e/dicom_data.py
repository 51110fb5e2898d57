"""Deterministic DICOM test studies, and their upload to an Orthanc.

Every UID comes from ``pydicom.uid.generate_uid(entropy_srcs=...)`` over fixed strings, so
two runs generate byte-identical files, and Orthanc (whose ids are SHA-1 based) gives them
the same ids every time. Pixel data is real: 64x64 MONOCHROME2 unsigned 16-bit, a different
pattern per instance, so previews and rendered frames are meaningful.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

__all__ = [
    "GeneratedData",
    "Instance",
    "OrthancIds",
    "Patient",
    "Series",
    "Study",
    "encode_instance",
    "generate_data",
    "upload",
]

IMAGE_SIZE = 64
BITS_STORED = 12
INSTITUTION_NAME = "ORTHANC-SHARE E2E HOSPITAL"

# (PatientID, PatientName, PatientBirthDate, PatientSex): fixed, so tests can search them.
PATIENTS = (
    ("OSHARE-P001", "DOE^JANE", "19700101", "F"),
    ("OSHARE-P002", "SMITH^JOHN", "19650415", "M"),
    ("OSHARE-P003", "MARTIN^ALICE", "19881231", "F"),
)


@dataclass(frozen=True, slots=True)
class Patient:
    """Patient-level attributes shared by all studies of one patient."""

    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class Instance:
    """One MR image."""

    sop_instance_uid: str
    instance_number: int


@dataclass(frozen=True, slots=True)
class Series:
    """One series and its instances."""

    series_instance_uid: str
    series_number: int
    description: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True, slots=True)
class Study:
    """One study, with its patient and series."""

    study_instance_uid: str
    patient: Patient
    accession_number: str
    study_id: str
    study_date: str
    description: str
    institution_name: str
    series: tuple[Series, ...]

    def instances(self) -> Iterator[tuple[Series, Instance]]:
        """Every (series, instance) pair of the study, in order."""
        for series in self.series:
            for instance in series.instances:
                yield series, instance


@dataclass(frozen=True, slots=True)
class GeneratedData:
    """Everything ``generate_data`` produced."""

    patients: tuple[Patient, ...]
    studies: tuple[Study, ...]

    def studies_of(self, patient: Patient) -> tuple[Study, ...]:
        """The studies of one patient."""
        return tuple(study for study in self.studies if study.patient == patient)

    @property
    def instance_count(self) -> int:
        """Total number of instances."""
        return sum(len(series.instances) for study in self.studies for series in study.series)


@dataclass(frozen=True, slots=True)
class OrthancIds:
    """Orthanc ids recorded from the ``POST /instances`` answers, keyed by DICOM identifier.

    ``patients`` is keyed by PatientID, the others by their instance UID.
    """

    patients: Mapping[str, str]
    studies: Mapping[str, str]
    series: Mapping[str, str]
    instances: Mapping[str, str]

    def study(self, study: Study) -> str:
        """Orthanc id of a generated study."""
        return self.studies[study.study_instance_uid]


def _uid(seed: str, *parts: str) -> str:
    return str(generate_uid(entropy_srcs=[seed, *parts]))


def generate_data(
    *,
    seed: str = "orthanc-share-e2e",
    patient_count: int = 3,
    studies_per_patient: int = 2,
    series_per_study: int = 2,
    instances_per_series: int = 3,
) -> GeneratedData:
    """Describe a deterministic set of studies (encoding happens in ``encode_instance``)."""
    if not 1 <= patient_count <= len(PATIENTS):
        raise ValueError(f"patient_count must be between 1 and {len(PATIENTS)}")
    patients = tuple(Patient(*attributes) for attributes in PATIENTS[:patient_count])
    studies = []
    for patient_index, patient in enumerate(patients, start=1):
        for study_index in range(1, studies_per_patient + 1):
            study_key = f"{patient.patient_id}/study-{study_index}"
            series = tuple(
                Series(
                    series_instance_uid=_uid(seed, study_key, f"series-{series_index}"),
                    series_number=series_index,
                    description=f"E2E SERIES {series_index}",
                    instances=tuple(
                        Instance(
                            sop_instance_uid=_uid(
                                seed, study_key, f"series-{series_index}", f"instance-{number}"
                            ),
                            instance_number=number,
                        )
                        for number in range(1, instances_per_series + 1)
                    ),
                )
                for series_index in range(1, series_per_study + 1)
            )
            studies.append(
                Study(
                    study_instance_uid=_uid(seed, study_key),
                    patient=patient,
                    accession_number=f"ACC{patient_index:03d}{study_index:02d}",
                    study_id=f"S{patient_index}{study_index}",
                    study_date=f"2024{patient_index:02d}{study_index:02d}",
                    description=f"E2E STUDY {patient_index}.{study_index}",
                    institution_name=INSTITUTION_NAME,
                    series=series,
                )
            )
    return GeneratedData(patients=patients, studies=tuple(studies))


def _pixel_data(study: Study, series: Series, instance: Instance) -> bytes:
    # A gradient shifted per instance: distinct images, values within BITS_STORED.
    offset = (series.series_number * 211 + instance.instance_number * 97) % 1024
    values = [
        (row * 37 + column * 53 + offset + int(study.study_id[1:]) * 7) % (1 << BITS_STORED)
        for row in range(IMAGE_SIZE)
        for column in range(IMAGE_SIZE)
    ]
    return struct.pack(f"<{len(values)}H", *values)


def encode_instance(study: Study, series: Series, instance: Instance) -> bytes:
    """Encode one instance as a DICOM Part 10 file (explicit VR little endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = UID(instance.sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = instance.sop_instance_uid
    ds.StudyInstanceUID = study.study_instance_uid
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.patient_id
    ds.PatientBirthDate = study.patient.birth_date
    ds.PatientSex = study.patient.sex
    ds.StudyDate = study.study_date
    ds.StudyTime = "101500"
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = study.description
    ds.ReferringPhysicianName = "REFERRER^E2E"
    ds.InstitutionName = study.institution_name
    ds.Modality = "MR"
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = series.description
    ds.InstanceNumber = instance.instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = IMAGE_SIZE
    ds.Columns = IMAGE_SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = 1 << (BITS_STORED - 1)
    ds.WindowWidth = 1 << BITS_STORED
    ds.add_new(0x7FE00010, "OW", _pixel_data(study, series, instance))

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def upload(client: httpx.Client, data: GeneratedData) -> OrthancIds:
    """POST every instance to ``client``'s Orthanc and record the ids from the answers."""
    patients: dict[str, str] = {}
    studies: dict[str, str] = {}
    series_ids: dict[str, str] = {}
    instances: dict[str, str] = {}
    for study in data.studies:
        for series, instance in study.instances():
            response = client.post(
                "/instances",
                content=encode_instance(study, series, instance),
                headers={"Content-Type": "application/dicom"},
            )
            response.raise_for_status()
            answer = response.json()
            if answer.get("Status") not in ("Success", "AlreadyStored"):
                raise RuntimeError(f"Orthanc did not store an instance: {answer.get('Status')}")
            instances[instance.sop_instance_uid] = answer["ID"]
            series_ids[series.series_instance_uid] = answer["ParentSeries"]
            studies[study.study_instance_uid] = answer["ParentStudy"]
            patients[study.patient.patient_id] = answer["ParentPatient"]
    return OrthancIds(patients=patients, studies=studies, series=series_ids, instances=instances)
