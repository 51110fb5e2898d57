"""De-identification of Orthanc REST JSON: resources, tags, and the Osimis viewer's series.

Pure functions of the decoded answer and a share's pseudonymizer. Orthanc ids are SHA-1
digests of the patient id and real UIDs, so they identify as much as the UIDs: they are
replaced by keyed pseudonyms (`Pseudonymizer.orthanc_id`). Objects are rebuilt from
known fields only, so a field Orthanc adds in a later version is dropped, not leaked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from anonymizer.profile import (
    DEIDENTIFICATION_METHOD,
    Action,
    action_for,
    anonymize_string,
    base_vr,
    dummy_value,
    parse_tag,
)
from shared.pseudonyms import Pseudonymizer

__all__ = [
    "anonymize_full_tags",
    "anonymize_osimis_series",
    "anonymize_resource",
    "anonymize_resources",
    "anonymize_simplified_tags",
]

_ID_FIELDS = ("ID", "ParentPatient", "ParentStudy", "ParentSeries")
_ID_LIST_FIELDS = ("Studies", "Series", "Instances")
_PLAIN_FIELDS = ("Type", "IsStable", "ExpectedNumberOfInstances", "Status", "IndexInSeries")
_TAG_FIELDS = ("MainDicomTags", "PatientMainDicomTags")
_MARKERS_SIMPLIFIED = {
    "PatientIdentityRemoved": "YES",
    "DeidentificationMethod": DEIDENTIFICATION_METHOD,
    "LongitudinalTemporalInformationModified": "MODIFIED",
}


def _tag_of_key(key: str) -> int | None:
    tag = tag_for_keyword(key)
    if tag is not None:
        return int(tag)
    return parse_tag(key)


def _string(action: Action, vr: str, value: str, pseudo: Pseudonymizer) -> str | None:
    """A backslash-separated multi-value string after `action`; None removes nothing."""
    if action is Action.EMPTY:
        return ""
    if action is Action.DUMMY:
        dummy = dummy_value(vr)
        return "" if isinstance(dummy, bytes) else str(dummy)
    parts = value.split("\\") if vr not in ("LT", "ST", "UT", "UR") else [value]
    changed = [anonymize_string(action, vr, part, pseudo) for part in parts]
    return "\\".join(part for part in changed if part is not None)


def anonymize_simplified_tags(
    tags: object, pseudo: Pseudonymizer, *, markers: bool = False
) -> dict[str, Any]:
    """`?simplify` tags, `MainDicomTags` or `simplified-tags`: keyword -> value."""
    result: dict[str, Any] = {}
    if not isinstance(tags, Mapping):
        return result
    for key, value in tags.items():
        tag = _tag_of_key(key) if isinstance(key, str) else None
        if tag is None:
            continue
        vr = base_vr(None, tag)
        action = action_for(tag, vr)
        if action is Action.REMOVE:
            continue
        if value is None:
            result[key] = None
        elif isinstance(value, list):
            if action in (Action.KEEP, Action.CLEAN):
                result[key] = [
                    anonymize_simplified_tags(item, pseudo)
                    for item in value
                    if isinstance(item, Mapping)
                ]
            else:
                result[key] = []
        elif isinstance(value, str):
            changed = _string(action, vr, value, pseudo)
            if changed is not None:
                result[key] = changed
    if markers:
        result.update(_MARKERS_SIMPLIFIED)
    return result


def _full_entry(tag: int, entry: object, pseudo: Pseudonymizer) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping):
        return None
    vr = base_vr(None, tag)
    action = action_for(tag, vr)
    if action is Action.REMOVE:
        return None
    kind = entry.get("Type")
    value = entry.get("Value")
    out: dict[str, Any] = {"Name": keyword_for_tag(tag) or "Unknown Tag & Data", "Type": kind}
    if kind == "Sequence" and isinstance(value, list):
        if action in (Action.KEEP, Action.CLEAN):
            out["Value"] = [anonymize_full_tags(item, pseudo) for item in value]
        else:
            out["Value"] = []
    elif kind == "String" and isinstance(value, str):
        changed = _string(action, vr, value, pseudo)
        out["Value"] = changed if changed is not None else ""
    elif kind in ("Null", "TooLong", "Binary"):
        out["Value"] = None
    else:
        return None
    return out


def anonymize_full_tags(
    tags: object, pseudo: Pseudonymizer, *, markers: bool = False
) -> dict[str, Any]:
    """`/instances/{id}/tags`: "gggg,eeee" -> {Name, Type, Value}."""
    result: dict[str, Any] = {}
    if not isinstance(tags, Mapping):
        return result
    for key, entry in tags.items():
        tag = parse_tag(key) if isinstance(key, str) else None
        if tag is None:
            continue
        changed = _full_entry(tag, entry, pseudo)
        if changed is not None:
            result[f"{tag >> 16:04x},{tag & 0xFFFF:04x}"] = changed
    if markers:
        for keyword, value in _MARKERS_SIMPLIFIED.items():
            tag = int(tag_for_keyword(keyword) or 0)
            key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
            result[key] = {"Name": keyword, "Type": "String", "Value": value}
    return dict(sorted(result.items()))


def anonymize_resource(resource: object, pseudo: Pseudonymizer) -> dict[str, Any]:
    """A patient, study, series or instance object of Orthanc's REST API."""
    result: dict[str, Any] = {}
    if not isinstance(resource, Mapping):
        return result
    for field in _ID_FIELDS:
        value = resource.get(field)
        if isinstance(value, str):
            result[field] = pseudo.orthanc_id(value)
    for field in _ID_LIST_FIELDS:
        values = resource.get(field)
        if isinstance(values, list):
            result[field] = [pseudo.orthanc_id(v) for v in values if isinstance(v, str)]
    for field in _PLAIN_FIELDS:
        value = resource.get(field)
        if isinstance(value, str | int | bool) or value is None and field in resource:
            result[field] = value
    for field in _TAG_FIELDS:
        if field in resource:
            result[field] = anonymize_simplified_tags(resource[field], pseudo)
    return result


def anonymize_resources(document: object, pseudo: Pseudonymizer) -> Any:
    """One resource object, or a list of them (`/studies/{id}/series`, ...)."""
    if isinstance(document, list):
        return [anonymize_resource(item, pseudo) for item in document if isinstance(item, Mapping)]
    return anonymize_resource(document, pseudo)


def anonymize_osimis_series(series: object, pseudo: Pseudonymizer) -> dict[str, Any]:
    """`/osimis-viewer/series/{id}`: the series' tags, its instances' tags and frames."""
    result: dict[str, Any] = {}
    if not isinstance(series, Mapping):
        return result
    if isinstance(series.get("id"), str):
        result["id"] = pseudo.orthanc_id(series["id"])
    if isinstance(series.get("contentType"), str):
        result["contentType"] = series["contentType"]
    result["tags"] = anonymize_simplified_tags(series.get("tags"), pseudo, markers=True)
    instances_tags = series.get("instancesTags")
    if isinstance(instances_tags, Mapping):
        result["instancesTags"] = {
            pseudo.orthanc_id(key): anonymize_simplified_tags(value, pseudo, markers=True)
            for key, value in instances_tags.items()
            if isinstance(key, str)
        }
    instances = series.get("instances")
    if isinstance(instances, list):
        result["instances"] = [
            [pseudo.orthanc_id(item[0]), *[n for n in item[1:] if isinstance(n, int)]]
            for item in instances
            if isinstance(item, list) and item and isinstance(item[0], str)
        ]
    qualities = series.get("availableQualities")
    if isinstance(qualities, list):
        result["availableQualities"] = [q for q in qualities if isinstance(q, str)]
    return result
