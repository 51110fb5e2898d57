"""The rule set: one action per attribute, from the Annex E table and our decisions."""

from __future__ import annotations

import pytest

from anonymizer.profile import Action, action_for, anonymize_string, base_vr, parse_tag, rewrite_url
from tests.anonymizer.conftest import pseudonymizer


@pytest.mark.parametrize(
    ("tag", "vr", "action"),
    [
        (0x00100010, "PN", Action.EMPTY),  # PatientName: Z
        (0x00100020, "LO", Action.EMPTY),  # PatientID: Z/D
        (0x00100030, "DA", Action.EMPTY),  # PatientBirthDate: Z, a patient date is not shifted
        (0x00101010, "AS", Action.REMOVE),  # PatientAge: X
        (0x00101040, "LO", Action.REMOVE),  # PatientAddress: X
        (0x00080050, "SH", Action.EMPTY),  # AccessionNumber: Z
        (0x00080080, "LO", Action.REMOVE),  # InstitutionName: X/Z/D
        (0x00080081, "ST", Action.REMOVE),  # InstitutionAddress: X
        (0x00080090, "PN", Action.EMPTY),  # ReferringPhysicianName: Z
        (0x00081050, "PN", Action.REMOVE),  # PerformingPhysicianName: X
        (0x00081030, "LO", Action.REMOVE),  # StudyDescription: X
        (0x00204000, "LT", Action.REMOVE),  # ImageComments: X
        (0x00080020, "DA", Action.SHIFT),  # StudyDate: shifted, not emptied
        (0x0008002A, "DT", Action.SHIFT),  # AcquisitionDateTime
        (0x00080030, "TM", Action.EMPTY),  # StudyTime: Z
        (0x0020000D, "UI", Action.UID),  # StudyInstanceUID: U
        (0x0020000E, "UI", Action.UID),
        (0x00080018, "UI", Action.UID),
        (0x00081155, "UI", Action.UID),  # ReferencedSOPInstanceUID
        (0x00200052, "UI", Action.UID),  # FrameOfReferenceUID
        (0x00080016, "UI", Action.KEEP),  # SOPClassUID: never changed
        (0x00081150, "UI", Action.KEEP),  # ReferencedSOPClassUID
        (0x00020010, "UI", Action.KEEP),  # TransferSyntaxUID
        (0x00081140, "SQ", Action.CLEAN),  # ReferencedImageSequence: X/Z/U*
        (0x00081115, "SQ", Action.CLEAN),  # ReferencedSeriesSequence: not listed
        (0x00081110, "SQ", Action.REMOVE),  # ReferencedStudySequence: X/Z
        (0x0040A730, "SQ", Action.EMPTY),  # ContentSequence: D, no dummy content
        (0x0040A123, "PN", Action.DUMMY),  # PersonName: D
        (0x0040A160, "UT", Action.REMOVE),  # TextValue: unlisted free text
        (0x0040A067, "PN", Action.EMPTY),  # unlisted person name: emptied all the same
        (0x0040A078, "SQ", Action.REMOVE),  # AuthorObserverSequence: X
        (0x00091010, "LO", Action.REMOVE),  # private
        (0x00090010, "LO", Action.REMOVE),  # private creator
        (0x00080000, "UL", Action.REMOVE),  # group length
        (0x00990001, "UN", Action.REMOVE),  # unknown
        (0x60003000, "OW", Action.REMOVE),  # OverlayData (repeating group)
        (0x60024000, "LT", Action.REMOVE),  # OverlayComments
        (0x7FE00010, "OW", Action.KEEP),  # PixelData
        (0x00280010, "US", Action.KEEP),  # Rows
        (0x00081190, "UR", Action.KEEP),  # RetrieveURL: kept, its UIDs rewritten
        (0x00120062, "CS", Action.REMOVE),  # PatientIdentityRemoved: set afresh
    ],
)
def test_action_table(tag: int, vr: str, action: Action) -> None:
    assert action_for(tag, vr) is action


@pytest.mark.parametrize(
    ("action", "vr", "value", "expected"),
    [
        (Action.KEEP, "LO", "MR", "MR"),
        (Action.EMPTY, "LO", "DOE", None),
        (Action.REMOVE, "LO", "DOE", None),
        (Action.DUMMY, "LO", "DOE", "ANONYMIZED"),
        (Action.DUMMY, "DS", "12.5", "0"),
        (Action.UID, "UI", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4"),
        (Action.SHIFT, "DA", "not a date", None),
        (Action.SHIFT, "DA", "", ""),
    ],
)
def test_anonymize_string(action: Action, vr: str, value: str, expected: str | None) -> None:
    assert anonymize_string(action, vr, value, pseudonymizer()) == expected


def test_uid_action_maps_instance_uids() -> None:
    pseudo = pseudonymizer()

    assert anonymize_string(Action.UID, "UI", "1.2.3.4", pseudo) == pseudo.uid("1.2.3.4")


def test_url_uids_are_rewritten_and_the_rest_kept() -> None:
    pseudo = pseudonymizer()
    url = "http://orthanc:8042/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/bulk/7fe00010"

    assert rewrite_url(url, pseudo) == (
        f"http://orthanc:8042/dicom-web/studies/{pseudo.uid('1.2.3')}/series/{pseudo.uid('1.2.4')}"
        f"/instances/{pseudo.uid('1.2.5')}/bulk/7fe00010"
    )


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("0010,0010", 0x00100010),
        ("00100010", 0x00100010),
        ("(7fe0,0010)", 0x7FE00010),
        ("PatientName", None),
        ("001000", None),
    ],
)
def test_parse_tag(text: str, tag: int | None) -> None:
    assert parse_tag(text) == tag


def test_base_vr_resolves_ambiguous_and_unknown_vrs() -> None:
    assert base_vr("UN", 0x7FE00010) == "OB"
    assert base_vr(None, 0x00100010) == "PN"
    assert base_vr("LO", 0x00091010) == "LO"
    assert base_vr(None, 0x00091010) == "UN"
