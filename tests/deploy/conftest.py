"""Fixtures of the deployment checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.compose import REPO

GENERATOR = REPO / "docker" / "generate-secrets.py"


def generate_secrets(directory: Path) -> subprocess.CompletedProcess[str]:
    """Run docker/generate-secrets.py as an operator would."""
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def generated_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A docker/secrets/ directory as the generator fills it (read-only use)."""
    directory = tmp_path_factory.mktemp("deploy") / "secrets"
    result = generate_secrets(directory)
    assert result.returncode == 0, result.stderr
    return directory


# The real-Orthanc fixtures of tests/e2e (Debian's Orthanc with the authorization-plugin
# emulator), made available to the deployment tests as well.
from tests.e2e.conftest import (  # noqa: E402, F401 - re-exported pytest fixtures
    generated_data,
    orthanc_factory,
    orthanc_seed,
)
