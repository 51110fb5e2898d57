"""DICOM JSON (QIDO results and WADO-RS metadata): identifying values planted, none left."""

from __future__ import annotations

import json
from typing import Any

import pytest

from anonymizer.dicom_json import anonymize_dataset_json, anonymize_dicom_json, uid_of
from tests.anonymizer import samples
from tests.anonymizer.conftest import pseudonymizer


def values(dataset: dict[str, Any], key: str) -> list[Any] | None:
    element = dataset.get(key)
    return None if element is None else element.get("Value")


def test_planted_values_are_gone() -> None:
    result = anonymize_dicom_json([samples.planted_json()], pseudonymizer(), markers=True)

    assert samples.leaks(json.dumps(result)) == []


def test_planted_sample_carries_every_value_but_the_file_meta() -> None:
    # Guards the test above: the values it looks for are really in the input.
    found = samples.leaks(json.dumps(samples.planted_json()))
    assert set(samples.PLANTED) - set(found) == {"SENDING-AE"}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("00100010", None),  # PatientName: emptied
        ("00100020", None),  # PatientID: emptied
        ("00100030", None),  # PatientBirthDate: emptied
        ("00080050", None),  # AccessionNumber
        ("00080090", None),  # ReferringPhysicianName
        ("00100040", None),  # PatientSex: Z
        ("00080060", ["MR"]),  # Modality kept
        ("00280010", [2]),  # Rows kept
        ("00080016", ["1.2.840.10008.5.1.4.1.1.4"]),  # SOPClassUID kept
    ],
)
def test_element_values(key: str, expected: list[Any] | None) -> None:
    result = anonymize_dataset_json(samples.planted_json(), pseudonymizer())

    assert key in result
    assert values(result, key) == expected


@pytest.mark.parametrize(
    "key",
    ["00101040", "00080080", "00081030", "00204000", "00091001", "00090010", "00101002"],
)
def test_removed_elements(key: str) -> None:
    source = samples.planted_json()
    assert key in source

    assert key not in anonymize_dataset_json(source, pseudonymizer())


def test_uids_are_pseudonyms_and_references_stay_consistent() -> None:
    pseudo = pseudonymizer()
    result = anonymize_dataset_json(samples.planted_json(), pseudo)

    assert values(result, "0020000D") == [pseudo.uid(samples.STUDY)]
    assert values(result, "0020000E") == [pseudo.uid(samples.SERIES)]
    assert values(result, "00080018") == [pseudo.uid(samples.INSTANCE)]
    assert values(result, "00200052") == [pseudo.uid(samples.FRAME_OF_REFERENCE)]
    referenced = values(result, "00081140")
    assert referenced is not None
    assert values(referenced[0], "00081155") == [pseudo.uid(samples.OTHER_INSTANCE)]
    assert values(referenced[0], "00081150") == ["1.2.840.10008.5.1.4.1.1.4"]
    series_item = values(result, "00081115")
    assert series_item is not None
    assert values(series_item[0], "0020000E") == values(result, "0020000E")
    assert values(series_item[0], "00100010") is None  # PatientName nested, emptied too
    nested = values(series_item[0], "0008114A")
    assert nested is not None
    assert values(nested[0], "00081155") == [pseudo.uid(samples.OTHER_INSTANCE)]


def test_content_sequence_is_emptied() -> None:
    source = samples.planted_json()
    assert values(source, "0040A730")

    result = anonymize_dataset_json(source, pseudonymizer())

    assert result["0040A730"] == {"vr": "SQ"}


def test_unlisted_free_text_is_removed() -> None:
    # TextValue is not in the table; outside a content sequence it is dropped all the same.
    source = {"0040A160": {"vr": "UT", "Value": ["JANE IS FINE"]}}

    assert anonymize_dataset_json(source, pseudonymizer()) == {}


def test_dates_are_shifted_and_times_emptied() -> None:
    pseudo = pseudonymizer()
    result = anonymize_dataset_json(samples.planted_json(), pseudo)

    assert values(result, "00080020") == [pseudo.shift_date(samples.STUDY_DATE)]
    assert values(result, "00080030") is None


def test_bulk_data_uri_names_pseudonyms() -> None:
    pseudo = pseudonymizer()
    result = anonymize_dataset_json(samples.planted_json(), pseudo)

    assert result["7FE00010"] == {
        "vr": "OW",
        "BulkDataURI": (
            f"http://orthanc:8042/dicom-web/studies/{pseudo.uid(samples.STUDY)}"
            f"/series/{pseudo.uid(samples.SERIES)}/instances/{pseudo.uid(samples.INSTANCE)}"
            "/bulk/7fe00010"
        ),
    }


def test_retrieve_url_names_pseudonyms() -> None:
    pseudo = pseudonymizer()
    qido = {
        "00081190": {
            "vr": "UR",
            "Value": [f"http://orthanc/dicom-web/studies/{samples.STUDY}"],
        },
        "0020000D": {"vr": "UI", "Value": [samples.STUDY]},
    }

    result = anonymize_dicom_json([qido], pseudo)

    assert values(result[0], "00081190") == [
        f"http://orthanc/dicom-web/studies/{pseudo.uid(samples.STUDY)}"
    ]


def test_markers_are_added_when_asked() -> None:
    result = anonymize_dataset_json(samples.planted_json(), pseudonymizer(), markers=True)

    assert values(result, "00120062") == ["YES"]
    method = values(result, "00120063")
    assert method is not None and "BASIC PROFILE" in method[0]
    codes = values(result, "00120064")
    assert codes is not None
    assert [values(code, "00080100") for code in codes] == [["113100"], ["113107"]]
    assert "00120062" not in anonymize_dataset_json(samples.planted_json(), pseudonymizer())


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"00100010": "not an element"}, {}),
        ({"zzzz": {"vr": "LO", "Value": ["x"]}}, {}),
        ({"00080060": {"Value": ["MR"]}}, {}),
        ({"00080060": {"vr": "CS", "Value": "MR"}}, {}),
        ({"00080060": {"vr": "CS"}}, {"00080060": {"vr": "CS"}}),
        (
            {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}},
            {"00100010": {"vr": "PN"}},
        ),
        (
            {
                "00091001": {"vr": "LO", "Value": ["SECRET"]},
                "00080060": {"vr": "CS", "Value": ["MR"]},
            },
            {"00080060": {"vr": "CS", "Value": ["MR"]}},
        ),
        (
            {"00081030": {"vr": "LO", "InlineBinary": "REVPRQ=="}},
            {},
        ),
        (
            {"00100010": {"vr": "PN", "BulkDataURI": "http://x/studies/1.2/bulk/00100010"}},
            {"00100010": {"vr": "PN"}},
        ),
    ],
)
def test_malformed_and_edge_elements(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert anonymize_dataset_json(document, pseudonymizer()) == expected


def test_not_a_document_gives_an_empty_list() -> None:
    assert anonymize_dicom_json("oops", pseudonymizer()) == []


def test_uid_of_reads_the_first_value() -> None:
    assert uid_of({"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}, "0020000D") == "1.2.3"
    assert uid_of({"0020000D": {"vr": "UI"}}, "0020000D") is None
    assert uid_of([], "0020000D") is None
