"""The de-identification rules: one decision per attribute, shared by every representation.

Library choice. The action table is the one of DICOM PS3.15 Annex E (Basic Application
Level Confidentiality Profile) as packaged by `dicom-anonymizer` (KitwareMedical, BSD-3,
release 2.1.0 with the 2026c edition of the table, generated from the standard): it is
maintained, tracks the standard's editions and is plain data. Its engine is not used:
it applies actions to top-level attributes only (an identifying value nested in a sequence
that the table does not list survives), replaces UIDs with random ones kept in a
process-global dictionary (not reproducible, not per share, unbounded), and prints to
stdout. `dicognito` (MIT) replaces values with plausible fakes by its own rules rather
than the standard's table, and `deid` (MIT) brings numpy and matplotlib and a recipe
language for what is here a fixed table. So the table comes from `dicom-anonymizer`;
the engine below applies it at every nesting level, to DICOM JSON, Orthanc JSON and
pydicom datasets alike.

Decisions on top of the table:

* Private attributes (odd groups), group lengths and tags pydicom's dictionary does not
  know are removed.
* Combined actions keep the least information the standard allows: X/Z, X/D and X/Z/D
  remove; Z/D empties; X/Z/U* cleans a sequence (its UIDs are mapped) or maps a UID.
* D (dummy) on a sequence empties it (Content Sequence: no structured content is kept);
  on a UID maps it; elsewhere writes a fixed dummy of the right VR.
* U and any instance-level UID outside the table are replaced by the share's keyed
  pseudonym, so references inside sequences stay consistent. Class UIDs, transfer
  syntaxes, coding schemes and the standard's well-known UIDs are never changed.
* Dates (DA, and the date part of DT) outside the patient module are shifted back by the
  share's keyed offset (Retain Longitudinal Temporal Information, Modified Dates Option):
  intervals between the share's studies are kept, the real dates are not. Patient dates
  (birth date and the rest of group 0010) follow the table (emptied or removed).
* Attributes the table does not list are kept (the profile's rule), their sequences
  cleaned item by item, except free text (LT, ST, UT), which is removed, and person
  names (PN), which are emptied.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache

from dicomanonymizer.dicom_anonymization_databases import (  # type: ignore[import-untyped]
    dicomfields_2026c as annex_e,
)
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, repeater_has_tag

from shared.pseudonyms import Pseudonymizer

__all__ = [
    "DEIDENTIFICATION_CODES",
    "DEIDENTIFICATION_METHOD",
    "DUMMY_TEXT",
    "TABLE_EDITION",
    "Action",
    "action_for",
    "anonymize_string",
    "base_vr",
    "parse_tag",
    "rewrite_url",
]

TABLE_EDITION = "2026c"
DUMMY_TEXT = "ANONYMIZED"
DEIDENTIFICATION_METHOD = "ORTHANC-SHARE PS3.15 E BASIC PROFILE, MODIFIED DATES"
# (CodeValue, CodingSchemeDesignator, CodeMeaning) from DICOM PS3.16 CID 7050.
DEIDENTIFICATION_CODES = (
    ("113100", "DCM", "Basic Application Confidentiality Profile"),
    ("113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option"),
)

PATIENT_GROUP = 0x0010
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD_TAG = 0x00120063
DEIDENTIFICATION_CODE_SEQUENCE = 0x00120064
LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED = 0x00280303
MARKER_TAGS = frozenset(
    {
        PATIENT_IDENTITY_REMOVED,
        DEIDENTIFICATION_METHOD_TAG,
        DEIDENTIFICATION_CODE_SEQUENCE,
        LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
    }
)

TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
NUMBER_STRING_VRS = frozenset({"DS", "IS"})
NUMBER_VRS = frozenset({"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"})
FREE_TEXT_VRS = frozenset({"LT", "ST", "UT"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


class Action(StrEnum):
    """What happens to one attribute."""

    KEEP = "keep"
    REMOVE = "remove"
    EMPTY = "empty"
    DUMMY = "dummy"
    UID = "uid"
    SHIFT = "shift"
    CLEAN = "clean"


_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


def _load_table() -> tuple[dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for attribute, code in _CATEGORIES.items():
        for entry in getattr(annex_e, attribute):
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = code
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, code))
    return exact, tuple(masked)


_EXACT, _MASKED = _load_table()


def table_code(tag: int) -> str | None:
    """The Annex E action code of a tag ("D", "Z", "X", "U", "Z/D", ...), or None."""
    code = _EXACT.get(tag)
    if code is not None:
        return code
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, g_mask, e_mask, masked_code in _MASKED:
        if group & g_mask == g & g_mask and element & e_mask == e & e_mask:
            return masked_code
    return None


def base_vr(vr: str | None, tag: int) -> str:
    """One VR for an element: the given one, else the dictionary's (first of "OB or OW")."""
    if vr and vr != "UN":
        return vr.split(" or ")[0]
    try:
        known = dictionary_VR(tag)
    except KeyError:
        return vr or "UN"
    return known.split(" or ")[0] if known else (vr or "UN")


def parse_tag(text: str) -> int | None:
    """A tag from "0010,0010", "00100010" or "(0010,0010)"; None if it is none of those."""
    digits = text.strip().strip("()").replace(",", "")
    if len(digits) != 8:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None


def _keeps_uid(tag: int) -> bool:
    """UI attributes that name a class, a syntax or a scheme rather than an instance."""
    keyword = keyword_for_tag(tag) or ""
    return (
        keyword.endswith("ClassUID")
        or "TransferSyntax" in keyword
        or "CodingScheme" in keyword
        or keyword in ("ImplementationClassUID", "ContextGroupExtensionCreatorUID")
    )


def _known(tag: int) -> bool:
    return bool(dictionary_has_tag(tag) or repeater_has_tag(tag))


@lru_cache(maxsize=8192)
def action_for(tag: int, vr: str) -> Action:
    """The action on an attribute of a given (base) VR, wherever it is nested."""
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 1 or element == 0 or tag in MARKER_TAGS:
        # Private attributes, group lengths, and our own markers (set afresh).
        return Action.REMOVE
    code = table_code(tag)
    if vr in ("DA", "DT"):
        if group == PATIENT_GROUP:
            return Action.EMPTY if code in ("Z", "Z/D") else Action.REMOVE
        return Action.SHIFT
    if code is None:
        if not _known(tag):
            return Action.REMOVE
        if vr == "SQ":
            return Action.CLEAN
        if vr == "UI" and not _keeps_uid(tag):
            return Action.UID
        if vr in FREE_TEXT_VRS:
            return Action.REMOVE
        if vr == "PN":
            return Action.EMPTY
        return Action.KEEP
    if code == "U" or (vr == "UI" and code in ("D", "X/Z/U*")):
        return Action.UID
    if vr == "SQ" and code == "X/Z/U*":
        return Action.CLEAN
    if code == "D":
        return Action.EMPTY if vr == "SQ" else Action.DUMMY
    if code in ("Z", "Z/D"):
        return Action.EMPTY
    return Action.REMOVE


def dummy_value(vr: str) -> str | int | bytes:
    """The fixed value written by a D action, by VR."""
    if vr in TEXT_VRS:
        return DUMMY_TEXT
    if vr in NUMBER_STRING_VRS:
        return "0"
    if vr in NUMBER_VRS:
        return 0
    if vr == "TM":
        return "000000"
    if vr == "AS":
        return "000Y"
    if vr in BINARY_VRS:
        return b""
    return ""


_URL_UID = re.compile(r"(/(?:studies|series|instances)/)([0-9][0-9.]*)")


def rewrite_url(url: str, pseudo: Pseudonymizer) -> str:
    """A DICOMweb URL (RetrieveURL, BulkDataURI) naming pseudonymous UIDs instead."""
    return _URL_UID.sub(lambda m: m.group(1) + pseudo.uid(m.group(2)), url)


def is_well_known_uid(value: str) -> bool:
    """Whether a UID is one of the standard's (a class, a transfer syntax, a frame of ...)."""
    return value in UID_dictionary


def anonymize_string(action: Action, vr: str, value: str, pseudo: Pseudonymizer) -> str | None:
    """One string value of a non-sequence attribute after `action` (None: no value)."""
    if action is Action.KEEP:
        return rewrite_url(value, pseudo) if vr == "UR" else value
    if action is Action.UID:
        stripped = value.strip().rstrip("\x00")
        if not stripped:
            return value
        return stripped if is_well_known_uid(stripped) else pseudo.uid(stripped)
    if action is Action.SHIFT:
        if not value.strip():
            return value
        if vr == "DT":
            return pseudo.shift_datetime(value)
        return pseudo.shift_date(value)
    if action is Action.DUMMY:
        dummy = dummy_value(vr)
        return dummy if isinstance(dummy, str) else str(dummy)
    return None
