"""De-identification of DICOM JSON (PS3.18 F.2): QIDO-RS results and WADO-RS metadata.

Pure functions of the decoded document and a share's pseudonymizer. Every element goes
through `profile.action_for`, at every nesting level; what is malformed is dropped, not
passed on. `BulkDataURI` and `RetrieveURL` keep their shape with pseudonymous UIDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anonymizer.profile import (
    DEIDENTIFICATION_CODES,
    DEIDENTIFICATION_METHOD,
    DUMMY_TEXT,
    Action,
    action_for,
    anonymize_string,
    base_vr,
    dummy_value,
    parse_tag,
    rewrite_url,
)
from shared.pseudonyms import Pseudonymizer

__all__ = ["anonymize_dataset_json", "anonymize_dicom_json", "deidentification_markers", "uid_of"]

STUDY_INSTANCE_UID = "0020000D"
SERIES_INSTANCE_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"


def _text(vr: str, value: str) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


def deidentification_markers() -> dict[str, Any]:
    """PatientIdentityRemoved, DeidentificationMethod (and its codes), in DICOM JSON."""
    codes = [
        {
            "00080100": _text("SH", value),
            "00080102": _text("SH", scheme),
            "00080104": _text("LO", meaning),
        }
        for value, scheme, meaning in DEIDENTIFICATION_CODES
    ]
    return {
        "00120062": _text("CS", "YES"),
        "00120063": _text("LO", DEIDENTIFICATION_METHOD),
        "00120064": {"vr": "SQ", "Value": codes},
        "00280303": _text("CS", "MODIFIED"),
    }


def _values(action: Action, vr: str, values: list[Any], pseudo: Pseudonymizer) -> list[Any]:
    result: list[Any] = []
    for value in values:
        if value is None:
            result.append(None)
        elif isinstance(value, str):
            changed = anonymize_string(action, vr, value, pseudo)
            if changed is not None:
                result.append(changed)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if action is Action.KEEP:
                result.append(value)
    return result


def _element(tag: int, element: object, pseudo: Pseudonymizer) -> dict[str, Any] | None:
    if not isinstance(element, Mapping):
        return None
    vr = element.get("vr")
    if not isinstance(vr, str):
        return None
    vr_base = base_vr(vr, tag)
    action = action_for(tag, vr_base)
    if action is Action.REMOVE:
        return None
    out: dict[str, Any] = {"vr": vr}
    if "BulkDataURI" in element or "InlineBinary" in element:
        uri, inline = element.get("BulkDataURI"), element.get("InlineBinary")
        if action is Action.KEEP and isinstance(uri, str):
            out["BulkDataURI"] = rewrite_url(uri, pseudo)
        elif action is Action.KEEP and isinstance(inline, str):
            out["InlineBinary"] = inline
        return out
    values = element.get("Value")
    if values is None or action is Action.EMPTY:
        return out
    if not isinstance(values, list):
        return None
    if vr_base == "SQ":
        if action in (Action.KEEP, Action.CLEAN):
            out["Value"] = [
                anonymize_dataset_json(item, pseudo) for item in values if isinstance(item, Mapping)
            ]
        return out
    if vr_base == "PN":
        if action is Action.KEEP:
            out["Value"] = [v for v in values if isinstance(v, Mapping | str) or v is None]
        elif action is Action.DUMMY:
            out["Value"] = [{"Alphabetic": DUMMY_TEXT}]
        return out
    if action is Action.DUMMY:
        dummy = dummy_value(vr_base)
        if not isinstance(dummy, bytes):
            out["Value"] = [dummy]
        return out
    kept = _values(action, vr_base, values, pseudo)
    if kept:
        out["Value"] = kept
    return out


def anonymize_dataset_json(
    dataset: Mapping[str, Any], pseudo: Pseudonymizer, *, markers: bool = False
) -> dict[str, Any]:
    """One DICOM JSON dataset de-identified; `markers` adds PatientIdentityRemoved etc."""
    result: dict[str, Any] = {}
    for key, element in dataset.items():
        tag = parse_tag(key) if isinstance(key, str) else None
        if tag is None:
            continue
        changed = _element(tag, element, pseudo)
        if changed is not None:
            result[f"{tag:08X}"] = changed
    if markers:
        result.update(deidentification_markers())
    return dict(sorted(result.items()))


def anonymize_dicom_json(document: Any, pseudo: Pseudonymizer, *, markers: bool = False) -> Any:
    """A QIDO/metadata answer (a list of datasets, or one) de-identified."""
    if isinstance(document, Mapping):
        return anonymize_dataset_json(document, pseudo, markers=markers)
    if isinstance(document, list):
        return [
            anonymize_dataset_json(item, pseudo, markers=markers)
            for item in document
            if isinstance(item, Mapping)
        ]
    return []


def uid_of(dataset: object, key: str) -> str | None:
    """The first value of a UI element of a (real) DICOM JSON dataset, if any."""
    if not isinstance(dataset, Mapping):
        return None
    element = dataset.get(key)
    if not isinstance(element, Mapping):
        return None
    values = element.get("Value")
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0].strip()
    return None
