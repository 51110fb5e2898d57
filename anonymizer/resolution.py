"""A matched request mapped back to real identifiers, within what one share grants.

Every UID and Orthanc id in the path, and every UID a QIDO query filters on, is looked
up in the share's index (its pseudonym, or the real id the token shows); anything the
share does not grant is refused before Orthanc is asked. QIDO filters on any other
attribute than the query's own arguments are passed as they are (the route's whitelist
has already refused the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

from anonymizer.errors import RefusedError
from anonymizer.index import Fetch, ShareIndex
from anonymizer.routes import TOKEN_ARG, Kind, RouteMatch

__all__ = ["Resolved", "resolve"]

STUDY_KEYS = ("studyinstanceuid", "0020000d")
SERIES_KEYS = ("seriesinstanceuid", "0020000e")
INSTANCE_KEYS = ("sopinstanceuid", "00080018")
_UID_KEYS = (*STUDY_KEYS, *SERIES_KEYS, *INSTANCE_KEYS)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request mapped back to real ids: upstream path and query, granted studies."""

    path: str
    query: list[tuple[str, str]]
    studies: frozenset[str]


def _split(value: str) -> tuple[list[str], str]:
    separator = "\\" if "\\" in value else ","
    return [v.strip() for v in value.split(separator) if v.strip()], separator


async def resolve(
    match: RouteMatch, args: list[tuple[str, str]], index: ShareIndex, fetch: Fetch
) -> Resolved:
    """The upstream path and query with real ids; RefusedError for any id not granted."""
    groups = match.groups
    real: dict[str, str] = {}
    studies: set[str] = set()
    study_index: int | None = None
    series_uid: str | None = None
    if "study" in groups:
        study_index = await index.study_by_uid(groups["study"], fetch)
        study_uid = index.study_uid(study_index) if study_index is not None else None
        if study_index is None or study_uid is None:
            raise RefusedError("study not in the share")
        real["study"] = study_uid
        studies.add(study_uid)
    if "series" in groups:
        assert study_index is not None
        series_uid = await index.series_uid(study_index, groups["series"], fetch)
        if series_uid is None:
            raise RefusedError("series not in the share")
        real["series"] = series_uid
    if "instance" in groups:
        assert study_index is not None and series_uid is not None
        found = await index.instance_uid(study_index, series_uid, groups["instance"], fetch)
        if found is None:
            raise RefusedError("instance not in the share")
        real["instance"] = found
    if "study_id" in groups:
        found_index = index.study_by_id(groups["study_id"])
        study_id = index.study_id(found_index) if found_index is not None else None
        if study_id is None:
            raise RefusedError("study not in the share")
        real["study_id"] = study_id
    if "series_id" in groups:
        found = await index.series_id(groups["series_id"], fetch)
        if found is None:
            raise RefusedError("series not in the share")
        real["series_id"] = found
    if "instance_id" in groups:
        found = await index.instance_id(groups["instance_id"], fetch)
        if found is None:
            raise RefusedError("instance not in the share")
        real["instance_id"] = found
    if match.kind is Kind.QIDO:
        query = await _qido_query(args, index, fetch, study_index, series_uid)
        studies.update(_qido_studies(query))
        if not studies:
            raise RefusedError("QIDO without a study of the share")
    else:
        query = [(k, v) for k, v in args if k.lower() != TOKEN_ARG]
    return Resolved(match.path(**real), query, frozenset(studies))


def _qido_studies(query: list[tuple[str, str]]) -> set[str]:
    found: set[str] = set()
    for key, value in query:
        if key.lower() in STUDY_KEYS:
            found.update(_split(value)[0])
    return found


async def _qido_query(
    args: list[tuple[str, str]],
    index: ShareIndex,
    fetch: Fetch,
    study_index: int | None,
    series_uid: str | None,
) -> list[tuple[str, str]]:
    """QIDO arguments with real UIDs; filters on any other attribute are refused."""
    by_key = {k.lower(): (k, v) for k, v in args if k.lower() != TOKEN_ARG}
    out: list[tuple[str, str]] = []
    for key in STUDY_KEYS:
        if key in by_key:
            name, value = by_key[key]
            values, separator = _split(value)
            reals = []
            for item in values:
                found = await index.study_by_uid(item, fetch)
                uid = index.study_uid(found) if found is not None else None
                if found is None or uid is None:
                    raise RefusedError("QIDO study not in the share")
                reals.append(uid)
                study_index = found if len(values) == 1 and study_index is None else study_index
            if not reals:
                raise RefusedError("empty QIDO study filter")
            out.append((name, separator.join(reals)))
    for key in SERIES_KEYS:
        if key in by_key:
            if study_index is None:
                raise RefusedError("QIDO series filter without one study")
            name, value = by_key[key]
            values, separator = _split(value)
            reals = []
            for item in values:
                found_series = await index.series_uid(study_index, item, fetch)
                if found_series is None:
                    raise RefusedError("QIDO series not in the share")
                reals.append(found_series)
            series_uid = reals[0] if len(reals) == 1 and series_uid is None else series_uid
            out.append((name, separator.join(reals)))
    for key in INSTANCE_KEYS:
        if key in by_key:
            if study_index is None or series_uid is None:
                raise RefusedError("QIDO instance filter without one series")
            name, value = by_key[key]
            values, separator = _split(value)
            reals = []
            for item in values:
                found_instance = await index.instance_uid(study_index, series_uid, item, fetch)
                if found_instance is None:
                    raise RefusedError("QIDO instance not in the share")
                reals.append(found_instance)
            out.append((name, separator.join(reals)))
    for key, (name, value) in by_key.items():
        if key not in _UID_KEYS:
            out.append((name, value))
    return out
