"""From pseudonyms back to real identifiers, within what one share grants.

Pseudonyms are one-way: the real UID or Orthanc id behind one is found by computing the
pseudonyms of the resources the share grants. The token names the studies; the series
and instances of a study are listed from the anonymized-share Orthanc, with the viewer's
own token (so its authorization plugin checks those calls too), and kept for a while.
Anything not found is outside the share and is refused by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anonymizer.dicom_json import SERIES_INSTANCE_UID, SOP_INSTANCE_UID, uid_of
from anonymizer.errors import UpstreamStatusError
from shared.models import Share
from shared.pseudonyms import Pseudonymizer, share_scope

__all__ = ["Fetch", "IndexCache", "ShareIndex", "StudyResources"]

# Fetch(path, headers) -> decoded JSON; raises UpstreamStatusError on a non-2xx answer.
Fetch = Callable[[str, Mapping[str, str]], Awaitable[Any]]

MIN_RELOAD_SECONDS = 10.0
DICOM_JSON = {"Accept": "application/dicom+json"}
# Orthanc answers these when it does not know a resource or the token may not see it.
NOT_FOUND_STATUSES = frozenset({400, 401, 403, 404})


def _not_found(error: UpstreamStatusError) -> bool:
    return error.status in NOT_FOUND_STATUSES


@dataclass(slots=True)
class StudyResources:
    """The series and instances of one shared study, indexed by their pseudonyms."""

    series_uids: dict[str, str] = field(default_factory=dict)  # pseudo -> real
    instance_uids: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (series, sop)
    series_ids: dict[str, str] = field(default_factory=dict)  # pseudo -> real Orthanc id
    instance_ids: dict[str, str] = field(default_factory=dict)
    loaded_at: float = 0.0


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _main_tag(resource: object, name: str) -> str | None:
    if not isinstance(resource, Mapping):
        return None
    tags = resource.get("MainDicomTags")
    return _text(tags.get(name)) if isinstance(tags, Mapping) else None


class ShareIndex:
    """The studies one share grants, and on demand their series and instances.

    A study is named by its pseudonym. Its real UID or Orthanc id is accepted too only
    when the token shows it (the original's anonymized Osimis links name real ids): for
    a sealed token, answering a real UID would confirm a guess of it.
    """

    def __init__(
        self, share: Share, pseudo: Pseudonymizer, ttl: float, clock: Callable[[], float]
    ) -> None:
        self.pseudo = pseudo
        self._real_names = not share.sealed
        self._uids: list[str | None] = [s.dicom_uid for s in share.studies]
        self._ids: list[str | None] = [s.orthanc_id for s in share.studies]
        self._ttl = ttl
        self._clock = clock
        self._resources: dict[int, StudyResources] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.created_at = clock()

    @property
    def study_count(self) -> int:
        """How many studies the share grants."""
        return len(self._uids)

    def study_uid(self, index: int) -> str | None:
        """The real StudyInstanceUID of a granted study, when known."""
        return self._uids[index]

    def study_id(self, index: int) -> str | None:
        """The real Orthanc id of a granted study, when the token names it."""
        return self._ids[index]

    async def _learn_uid(self, index: int, fetch: Fetch) -> str | None:
        study_id = self._ids[index]
        if study_id is None:
            return None
        try:
            uid = _main_tag(await fetch(f"/studies/{study_id}", {}), "StudyInstanceUID")
        except UpstreamStatusError as error:
            if _not_found(error):
                return None
            raise
        self._uids[index] = uid
        return uid

    def _names_uid(self, value: str, uid: str) -> bool:
        return value == self.pseudo.uid(uid) or (self._real_names and value == uid)

    async def study_by_uid(self, value: str, fetch: Fetch) -> int | None:
        """The granted study a UID names: its pseudonym, or the real UID the token shows."""
        for index, uid in enumerate(self._uids):
            if uid is not None and self._names_uid(value, uid):
                return index
        for index, uid in enumerate(self._uids):
            if uid is None:
                learned = await self._learn_uid(index, fetch)
                if learned is not None and self._names_uid(value, learned):
                    return index
        return None

    def study_by_id(self, value: str) -> int | None:
        """The granted study an Orthanc id names: its pseudonym, or the token's real id."""
        for index, study_id in enumerate(self._ids):
            if study_id is None:
                continue
            if value == self.pseudo.orthanc_id(study_id) or (
                self._real_names and value == study_id
            ):
                return index
        return None

    async def _load(self, index: int, fetch: Fetch) -> StudyResources:
        resources = StudyResources(loaded_at=self._clock())
        study_id = self._ids[index]
        if study_id is not None:
            series_list = await fetch(f"/studies/{study_id}/series", {})
            instances = await fetch(f"/studies/{study_id}/instances", {})
            series_uid_of_id: dict[str, str] = {}
            for series in series_list if isinstance(series_list, list) else ():
                sid, suid = _text(series.get("ID")), _main_tag(series, "SeriesInstanceUID")
                if sid is None or suid is None:
                    continue
                series_uid_of_id[sid] = suid
                resources.series_uids[self.pseudo.uid(suid)] = suid
                resources.series_ids[self.pseudo.orthanc_id(sid)] = sid
            for instance in instances if isinstance(instances, list) else ():
                iid, iuid = _text(instance.get("ID")), _main_tag(instance, "SOPInstanceUID")
                parent = series_uid_of_id.get(_text(instance.get("ParentSeries")) or "")
                if iid is None or iuid is None or parent is None:
                    continue
                resources.instance_uids[self.pseudo.uid(iuid)] = (parent, iuid)
                resources.instance_ids[self.pseudo.orthanc_id(iid)] = iid
            return resources
        study_uid = self._uids[index]
        assert study_uid is not None
        base = f"/dicom-web/studies/{study_uid}/series"
        series_list = await fetch(base, DICOM_JSON)
        for series in series_list if isinstance(series_list, list) else ():
            suid = uid_of(series, SERIES_INSTANCE_UID)
            if suid is None:
                continue
            resources.series_uids[self.pseudo.uid(suid)] = suid
            instances = await fetch(f"{base}/{suid}/instances", DICOM_JSON)
            for instance in instances if isinstance(instances, list) else ():
                iuid = uid_of(instance, SOP_INSTANCE_UID)
                if iuid is not None:
                    resources.instance_uids[self.pseudo.uid(iuid)] = (suid, iuid)
        return resources

    async def resources(self, index: int, fetch: Fetch, *, reload: bool = False) -> StudyResources:
        """The study's series and instances, listed once per TTL (or again on `reload`)."""
        lock = self._locks.setdefault(index, asyncio.Lock())
        async with lock:
            cached = self._resources.get(index)
            now = self._clock()
            fresh = cached is not None and now - cached.loaded_at < self._ttl
            if cached is not None and fresh and not reload:
                return cached
            if cached is not None and reload and now - cached.loaded_at < MIN_RELOAD_SECONDS:
                return cached
            try:
                loaded = await self._load(index, fetch)
            except UpstreamStatusError as error:
                if not _not_found(error):
                    raise
                loaded = StudyResources(loaded_at=now)
            self._resources[index] = loaded
            return loaded

    async def _find(self, index: int, fetch: Fetch, pick: Callable[[StudyResources], Any]) -> Any:
        found = pick(await self.resources(index, fetch))
        if found is None:
            # Maybe the study received new instances since it was listed.
            found = pick(await self.resources(index, fetch, reload=True))
        return found

    async def series_uid(self, index: int, pseudonym: str, fetch: Fetch) -> str | None:
        """The real SeriesInstanceUID of a series of a granted study."""
        found: str | None = await self._find(index, fetch, lambda r: r.series_uids.get(pseudonym))
        return found

    async def instance_uid(
        self, index: int, series_uid: str, pseudonym: str, fetch: Fetch
    ) -> str | None:
        """The real SOPInstanceUID of an instance of that series of a granted study."""

        def pick(resources: StudyResources) -> str | None:
            entry = resources.instance_uids.get(pseudonym)
            return entry[1] if entry is not None and entry[0] == series_uid else None

        found: str | None = await self._find(index, fetch, pick)
        return found

    async def series_id(self, pseudonym: str, fetch: Fetch) -> str | None:
        """The real Orthanc id of a series of any granted study."""
        return await self._find_id(pseudonym, fetch, "series")

    async def instance_id(self, pseudonym: str, fetch: Fetch) -> str | None:
        """The real Orthanc id of an instance of any granted study."""
        return await self._find_id(pseudonym, fetch, "instance")

    async def _find_id(self, pseudonym: str, fetch: Fetch, level: str) -> str | None:
        def pick(resources: StudyResources) -> str | None:
            table = resources.series_ids if level == "series" else resources.instance_ids
            return table.get(pseudonym)

        granted = [index for index, study_id in enumerate(self._ids) if study_id is not None]
        for reload in (False, True):
            for index in granted:
                found = pick(await self.resources(index, fetch, reload=reload))
                if found is not None:
                    return found
        return None


class IndexCache:
    """One `ShareIndex` per share scope, kept `ttl` seconds, at most `max_entries`."""

    def __init__(
        self,
        key: bytes,
        ttl: float,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, ShareIndex] = OrderedDict()

    def get(self, share: Share) -> ShareIndex:
        """The index of a share (built on first use)."""
        scope = share_scope(share)
        entry = self._entries.get(scope)
        if entry is not None and self._clock() - entry.created_at < max(self._ttl, 1.0):
            self._entries.move_to_end(scope)
            return entry
        entry = ShareIndex(share, Pseudonymizer(self._key, scope), self._ttl, self._clock)
        self._entries[scope] = entry
        self._entries.move_to_end(scope)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)
