"""The anonymous profile: what it answers, and the files it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.profiles import (
    DEFAULT_ANONYMOUS_PROFILE,
    AnonymousProfile,
    load_anonymous_profile,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(text)
    return path


def test_default_profile_grants_nothing() -> None:
    assert load_anonymous_profile(None) is DEFAULT_ANONYMOUS_PROFILE
    assert DEFAULT_ANONYMOUS_PROFILE.answer() == {
        "name": "Anonymous",
        "permissions": [],
        "authorized-labels": [],
        "groups": [],
        "validity": 60,
    }
    assert DEFAULT_ANONYMOUS_PROFILE.refusals() == []


def test_file_with_line_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '// comment\n  // indented comment\n{"name": "Guest // not a comment", "validity": 0}\n',
    )
    profile = load_anonymous_profile(path)
    assert profile.name == "Guest // not a comment"
    assert profile.validity == 0


def test_refusals_name_each_grant() -> None:
    profile = AnonymousProfile.model_validate(
        {"permissions": ["upload", "made-up"], "authorized-labels": ["*", "teaching"]}
    )
    assert profile.refusals() == [
        "permission 'upload' (storing new instances (POST /instances))",
        "permission 'made-up' (an unknown permission)",
        "authorized label '*' (lists every study to anyone)",
        "authorized label 'teaching' (lists the studies labelled 'teaching' to anyone)",
    ]


def test_refused_file_names_the_setting_and_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"permissions": ["all"]}))
    with pytest.raises(ConfigurationError) as error:
        load_anonymous_profile(path, setting="MY_SETTING")
    assert str(error.value).startswith(f"invalid configuration: MY_SETTING: {path} grants")
    assert "permission 'all'" in str(error.value)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '{"name": "' + "x" * 70000 + '"}')
    with pytest.raises(ConfigurationError, match="larger than 65536 bytes"):
        load_anonymous_profile(path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ConfigurationError, match="is not a JSON object"):
        load_anonymous_profile(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_anonymous_profile(tmp_path)
