"""Session fixtures for the real-Orthanc end-to-end tests.

* ``generated_data``: the deterministic studies of ``dicom_data.generate_data()``.
* ``orthanc_seed``: those studies loaded into a storage directory (once per session).
* ``orthanc_factory``: ``orthanc_factory(name, emulator=None, *, seeded=True,
  extra_config=None) -> OrthancServer`` starts a server on a copy of the seed; every server
  is killed at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dicom_data import GeneratedData, generate_data
from .orthanc import OrthancFactory, SeededStorage, seed_storage


@pytest.fixture(scope="session")
def generated_data() -> GeneratedData:
    """The generated test studies (3 patients x 2 studies x 2 series x 3 instances)."""
    return generate_data()


@pytest.fixture(scope="session")
def orthanc_seed(
    tmp_path_factory: pytest.TempPathFactory, generated_data: GeneratedData
) -> SeededStorage:
    """A storage directory holding ``generated_data``, with the ids Orthanc gave it."""
    return seed_storage(tmp_path_factory.mktemp("orthanc-seed"), generated_data)


@pytest.fixture(scope="session")
def orthanc_factory(
    tmp_path_factory: pytest.TempPathFactory, orthanc_seed: SeededStorage
) -> Iterator[OrthancFactory]:
    """Starts Orthanc servers on demand and stops them all after the session."""
    factory = OrthancFactory(tmp_path_factory.mktemp("orthanc-servers"), orthanc_seed)
    try:
        yield factory
    finally:
        factory.close()
