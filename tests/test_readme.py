"""The README stays true: its configuration table and the command CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from anonymizer.settings import Settings as AnonymizerSettings
from share_landing.settings import Settings as LandingSettings
from token_service.settings import Settings as TokenServiceSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _configuration_table() -> str:
    start = README.index("## Configuration")
    return README[start : README.index("\n## ", start + 1)]


def test_every_setting_is_in_the_configuration_reference() -> None:
    table = _configuration_table()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    for cls in (TokenServiceSettings, LandingSettings, AnonymizerSettings):
        for name in cls.model_fields:
            assert name.upper() in documented, f"{name.upper()} missing from the README"


def test_ci_runs_the_readme_test_command() -> None:
    quick_start = README[README.index("## Quick start") : README.index("## How a share works")]
    commands = re.findall(r"^(make \w+)\s+#", quick_start, flags=re.MULTILINE)
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
