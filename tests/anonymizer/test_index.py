"""The per-share caches: one index per share, kept a while, never shared between shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from anonymizer.errors import UpstreamStatusError
from anonymizer.index import MIN_RELOAD_SECONDS, IndexCache
from shared.models import Share
from tests.anonymizer.conftest import ANONYMIZATION_KEY, STUDY_ID, STUDY_UID, mint

pytestmark = pytest.mark.anyio

SERIES_ID = "11111111-22222222-33333333-44444444-55555555"
SERIES_UID = "1.2.840.113619.2.55.3.2"
INSTANCE_ID = "66666666-77777777-88888888-99999999-aaaaaaaa"
INSTANCE_UID = "1.2.840.113619.2.55.3.3"
TTL = 300.0


class Clock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeOrthanc:
    """Answers the index's listing calls for STUDY_ID and counts them."""

    def __init__(self, status: int | None = None) -> None:
        self.calls: list[str] = []
        self.status = status
        self.instances: list[dict[str, Any]] = [
            {
                "ID": INSTANCE_ID,
                "ParentSeries": SERIES_ID,
                "MainDicomTags": {"SOPInstanceUID": INSTANCE_UID},
            }
        ]

    async def __call__(self, path: str, headers: Mapping[str, str]) -> Any:
        self.calls.append(path)
        if self.status is not None:
            raise UpstreamStatusError(self.status)
        if path == f"/studies/{STUDY_ID}/series":
            return [{"ID": SERIES_ID, "MainDicomTags": {"SeriesInstanceUID": SERIES_UID}}]
        if path == f"/studies/{STUDY_ID}/instances":
            return self.instances
        raise AssertionError(f"unexpected call {path}")


def share(**overrides: Any) -> Share:
    return mint(**overrides)[1]


def cache(clock: Clock, **kwargs: Any) -> IndexCache:
    return IndexCache(ANONYMIZATION_KEY.encode(), TTL, clock=clock, **kwargs)


async def test_one_share_reuses_its_index() -> None:
    clock = Clock()
    indexes = cache(clock)
    first = share()

    assert indexes.get(first) is indexes.get(first)
    assert len(indexes) == 1


async def test_shares_of_the_same_study_do_not_share_an_index() -> None:
    clock = Clock()
    indexes = cache(clock)
    first, second = share(), share()
    orthanc = FakeOrthanc()

    one, two = indexes.get(first), indexes.get(second)

    assert one is not two
    assert one.pseudo.uid(STUDY_UID) != two.pseudo.uid(STUDY_UID)
    # Each index knows its own share's pseudonyms, not the other's.
    assert await one.study_by_uid(one.pseudo.uid(STUDY_UID), orthanc) == 0
    assert await two.study_by_uid(one.pseudo.uid(STUDY_UID), orthanc) is None
    assert await one.series_uid(0, one.pseudo.uid(SERIES_UID), orthanc) == SERIES_UID
    assert await two.series_uid(0, one.pseudo.uid(SERIES_UID), orthanc) is None
    assert two.study_by_id(one.pseudo.orthanc_id(STUDY_ID)) is None


async def test_an_index_does_not_open_a_study_of_another_share() -> None:
    clock = Clock()
    indexes = cache(clock)
    other_study = "1.2.840.113619.2.55.9.9"
    mine = indexes.get(share())
    theirs = share(studies=[{"dicom-uid": other_study}])

    assert await mine.study_by_uid(other_study, FakeOrthanc()) is None
    assert await mine.study_by_uid(mine.pseudo.uid(other_study), FakeOrthanc()) is None
    theirs_index = indexes.get(theirs)
    assert await theirs_index.study_by_uid(theirs_index.pseudo.uid(other_study), FakeOrthanc()) == 0
    # A sealed token's link shows pseudonyms only: the real UID names nothing.
    assert await theirs_index.study_by_uid(other_study, FakeOrthanc()) is None
    assert mine.study_by_id(STUDY_ID) is None


async def test_an_index_expires() -> None:
    clock = Clock()
    indexes = cache(clock)
    first = share()
    old = indexes.get(first)

    clock.now += TTL - 1
    assert indexes.get(first) is old
    clock.now += 1
    renewed = indexes.get(first)

    assert renewed is not old
    assert renewed.pseudo.uid(STUDY_UID) == old.pseudo.uid(STUDY_UID)


async def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    clock = Clock()
    indexes = cache(clock, max_entries=2)
    first, second, third = share(), share(), share()
    kept = indexes.get(first)
    indexes.get(second)
    indexes.get(first)  # used again: the second is now the oldest

    indexes.get(third)

    assert len(indexes) == 2
    assert indexes.get(first) is kept


async def test_a_study_is_listed_once_per_ttl() -> None:
    clock = Clock()
    index = cache(clock).get(share())
    orthanc = FakeOrthanc()

    for _ in range(3):
        assert await index.series_uid(0, index.pseudo.uid(SERIES_UID), orthanc) == SERIES_UID
        assert await index.instance_id(index.pseudo.orthanc_id(INSTANCE_ID), orthanc)
    assert len(orthanc.calls) == 2

    clock.now += TTL
    assert await index.series_uid(0, index.pseudo.uid(SERIES_UID), orthanc) == SERIES_UID
    assert len(orthanc.calls) == 4


async def test_an_unknown_pseudonym_relists_at_most_every_few_seconds() -> None:
    clock = Clock()
    index = cache(clock).get(share())
    orthanc = FakeOrthanc()
    new_uid = "1.2.840.113619.2.55.3.4"
    pseudonym = index.pseudo.uid(new_uid)

    assert await index.instance_uid(0, SERIES_UID, pseudonym, orthanc) is None
    calls = len(orthanc.calls)
    assert await index.instance_uid(0, SERIES_UID, pseudonym, orthanc) is None
    assert len(orthanc.calls) == calls  # not listed again so soon

    # The study received an instance: found once the reload interval has passed.
    orthanc.instances.append(
        {
            "ID": "ffffffff-00000000-00000000-00000000-00000000",
            "ParentSeries": SERIES_ID,
            "MainDicomTags": {"SOPInstanceUID": new_uid},
        }
    )
    clock.now += MIN_RELOAD_SECONDS
    assert await index.instance_uid(0, SERIES_UID, pseudonym, orthanc) == new_uid


async def test_a_study_orthanc_refuses_grants_nothing() -> None:
    clock = Clock()
    index = cache(clock).get(share())

    # Orthanc's authorization plugin refuses the viewer's token (revoked, for one).
    assert await index.series_uid(0, index.pseudo.uid(SERIES_UID), FakeOrthanc(403)) is None

    with pytest.raises(UpstreamStatusError):
        await cache(clock).get(share()).series_uid(0, "2.25.1", FakeOrthanc(500))
