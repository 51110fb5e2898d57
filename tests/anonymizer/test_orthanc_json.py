"""Orthanc REST JSON (resources, tags, the Osimis viewer's series): nothing identifying left."""

from __future__ import annotations

import json
from typing import Any

from anonymizer.orthanc_json import (
    anonymize_full_tags,
    anonymize_osimis_series,
    anonymize_resource,
    anonymize_resources,
    anonymize_simplified_tags,
)
from tests.anonymizer import samples
from tests.anonymizer.conftest import pseudonymizer

STUDY_ID = "ce487384-dec37a4c-934a561b-4cfc4310-ab7220c6"
PATIENT_ID = "1e347668-be6bcf16-599fbbea-1d247b0b-64186c0e"
SERIES_ID = "b39a3e70-d80346b8-cfef48cc-7528009d-e579f509"
INSTANCE_ID = "8b752eb5-878617d2-ba99266f-ef21e27b-2c83d663"

STUDY: dict[str, Any] = {
    "ID": STUDY_ID,
    "IsStable": True,
    "LastUpdate": "20261130T133108",
    "Labels": ["JANE-FOLLOWUP"],
    "MainDicomTags": {
        "AccessionNumber": "ACC-9999",
        "InstitutionName": "ST ELSEWHERE HOSPITAL",
        "ReferringPhysicianName": "DR^WHO",
        "StudyDate": samples.STUDY_DATE,
        "StudyDescription": "KNEE OF JANE",
        "StudyID": "S11",
        "StudyInstanceUID": samples.STUDY,
        "StudyTime": "101500",
    },
    "ParentPatient": PATIENT_ID,
    "PatientMainDicomTags": {
        "PatientBirthDate": "19700101",
        "PatientID": "PID-4711",
        "PatientName": "DOE^JANE",
        "PatientSex": "F",
        "OtherPatientIDs": "OTHER-PID-1",
    },
    "Series": [SERIES_ID],
    "Type": "Study",
    "SomethingNew": "DOE^JANE",
}


def test_study_resource() -> None:
    pseudo = pseudonymizer()

    result = anonymize_resource(STUDY, pseudo)

    assert samples.leaks(json.dumps(result)) == []
    assert STUDY_ID not in json.dumps(result) and PATIENT_ID not in json.dumps(result)
    assert result == {
        "ID": pseudo.orthanc_id(STUDY_ID),
        "ParentPatient": pseudo.orthanc_id(PATIENT_ID),
        "Series": [pseudo.orthanc_id(SERIES_ID)],
        "Type": "Study",
        "IsStable": True,
        "MainDicomTags": {
            "AccessionNumber": "",
            "ReferringPhysicianName": "",
            "StudyDate": pseudo.shift_date(samples.STUDY_DATE),
            "StudyID": "",
            "StudyInstanceUID": pseudo.uid(samples.STUDY),
            "StudyTime": "",
        },
        "PatientMainDicomTags": {
            "PatientBirthDate": "",
            "PatientID": "",
            "PatientName": "",
            "PatientSex": "",
        },
    }


def test_instances_list() -> None:
    pseudo = pseudonymizer()
    instances = [
        {
            "FileSize": 9210,
            "FileUuid": "3e66849b-eb78-4a9f-920a-c49bfcbf033b",
            "ID": INSTANCE_ID,
            "IndexInSeries": 1,
            "MainDicomTags": {"InstanceNumber": "1", "SOPInstanceUID": samples.INSTANCE},
            "ParentSeries": SERIES_ID,
            "Type": "Instance",
        },
        "not a resource",
    ]

    result = anonymize_resources(instances, pseudo)

    assert result == [
        {
            "ID": pseudo.orthanc_id(INSTANCE_ID),
            "ParentSeries": pseudo.orthanc_id(SERIES_ID),
            "Type": "Instance",
            "IndexInSeries": 1,
            "MainDicomTags": {
                "InstanceNumber": "1",
                "SOPInstanceUID": pseudo.uid(samples.INSTANCE),
            },
        }
    ]


def simplified() -> dict[str, Any]:
    return {
        "AccessionNumber": "ACC-9999",
        "ImageType": "ORIGINAL\\PRIMARY",
        "InstitutionName": "ST ELSEWHERE HOSPITAL",
        "PatientName": "DOE^JANE",
        "PatientBirthDate": "19700101",
        "PixelData": None,
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4",
        "SOPInstanceUID": samples.INSTANCE,
        "StudyDate": samples.STUDY_DATE,
        "ReferencedImageSequence": [
            {
                "ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.4",
                "ReferencedSOPInstanceUID": samples.OTHER_INSTANCE,
            }
        ],
        "OtherPatientIDsSequence": [{"PatientID": "OTHER-PID-1"}],
        "0009,1001": "SECRET-PRIVATE",
        "Unknown Tag & Data": "NURSE^RATCHED",
    }


def test_simplified_tags() -> None:
    pseudo = pseudonymizer()

    result = anonymize_simplified_tags(simplified(), pseudo, markers=True)

    assert samples.leaks(json.dumps(result)) == []
    assert result["ImageType"] == "ORIGINAL\\PRIMARY"
    assert result["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.4"
    assert result["SOPInstanceUID"] == pseudo.uid(samples.INSTANCE)
    assert result["PixelData"] is None
    assert result["ReferencedImageSequence"] == [
        {
            "ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.4",
            "ReferencedSOPInstanceUID": pseudo.uid(samples.OTHER_INSTANCE),
        }
    ]
    assert "OtherPatientIDsSequence" not in result
    assert result["PatientIdentityRemoved"] == "YES"


def test_full_tags() -> None:
    pseudo = pseudonymizer()
    tags = {
        "0008,0018": {"Name": "SOPInstanceUID", "Type": "String", "Value": samples.INSTANCE},
        "0010,0010": {"Name": "PatientName", "Type": "String", "Value": "DOE^JANE"},
        "0008,0080": {
            "Name": "InstitutionName",
            "Type": "String",
            "Value": "ST ELSEWHERE HOSPITAL",
        },
        "0009,0010": {"Name": "PrivateCreator", "Type": "String", "Value": "SECRET-PRIVATE"},
        "0008,1140": {
            "Name": "ReferencedImageSequence",
            "Type": "Sequence",
            "Value": [
                {
                    "0008,1155": {
                        "Name": "ReferencedSOPInstanceUID",
                        "Type": "String",
                        "Value": samples.OTHER_INSTANCE,
                    }
                }
            ],
        },
        "7fe0,0010": {"Name": "PixelData", "Type": "Null", "Value": None},
        "0008,0060": {"Name": "Modality", "Type": "Unexpected", "Value": "MR"},
    }

    result = anonymize_full_tags(tags, pseudo, markers=True)

    assert samples.leaks(json.dumps(result)) == []
    assert result["0008,0018"]["Value"] == pseudo.uid(samples.INSTANCE)
    assert result["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": ""}
    assert "0008,0080" not in result and "0009,0010" not in result
    assert result["0008,1140"]["Value"][0]["0008,1155"]["Value"] == pseudo.uid(
        samples.OTHER_INSTANCE
    )
    assert result["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}
    assert "0008,0060" not in result
    assert result["0012,0062"]["Value"] == "YES"


def test_osimis_series() -> None:
    pseudo = pseudonymizer()
    series = {
        "id": SERIES_ID,
        "contentType": "image",
        "tags": simplified(),
        "instancesTags": {INSTANCE_ID: simplified()},
        "instances": [[INSTANCE_ID, 0, 1]],
        "availableQualities": ["LOW", "LOSSLESS"],
        "debug": "DOE^JANE",
    }

    result = anonymize_osimis_series(series, pseudo)

    text = json.dumps(result)
    assert samples.leaks(text) == [] and INSTANCE_ID not in text and SERIES_ID not in text
    assert result["id"] == pseudo.orthanc_id(SERIES_ID)
    assert result["instances"] == [[pseudo.orthanc_id(INSTANCE_ID), 0, 1]]
    assert list(result["instancesTags"]) == [pseudo.orthanc_id(INSTANCE_ID)]
    assert result["availableQualities"] == ["LOW", "LOSSLESS"]
    assert "debug" not in result
