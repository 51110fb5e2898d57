"""HTTP Basic credentials of the token service."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable

import pytest

from shared.auth import BasicAuth, Role

ADMINS = {"share-user": "share-password", "ünïcode": "pässwörd"}
VALIDATORS = {"orthanc-plugin": "plugin-password"}


def basic(credentials: bytes | str, scheme: str = "Basic") -> str:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return f"{scheme} {base64.b64encode(raw).decode()}"


@pytest.fixture
def auth() -> BasicAuth:
    return BasicAuth(ADMINS, VALIDATORS)


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Record every `hmac.compare_digest` call the checker makes."""
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("shared.auth.hmac.compare_digest", counting)
    return calls


def test_admin_credentials(auth: BasicAuth) -> None:
    assert auth.role(basic("share-user:share-password")) is Role.ADMIN


def test_validator_credentials(auth: BasicAuth) -> None:
    assert auth.role(basic("orthanc-plugin:plugin-password")) is Role.VALIDATOR


def test_non_ascii_credentials(auth: BasicAuth) -> None:
    assert auth.role(basic("ünïcode:pässwörd")) is Role.ADMIN


def test_a_name_in_both_lists_is_an_admin() -> None:
    auth = BasicAuth({"user": "admin-password"}, {"user": "validator-password"})

    assert auth.role(basic("user:admin-password")) is Role.ADMIN
    assert auth.role(basic("user:validator-password")) is None


def test_passwords_may_contain_colons() -> None:
    auth = BasicAuth({"user": "pass:with:colons"})

    assert auth.role(basic("user:pass:with:colons")) is Role.ADMIN
    assert auth.role(basic("user:pass")) is None


@pytest.mark.parametrize(
    "credentials",
    [
        "share-user:wrong-password",
        "share-user:share-password ",
        "share-user:SHARE-PASSWORD",
        "share-user:",
        "orthanc-plugin:share-password",  # another user's password
        "Share-User:share-password",  # names are case-sensitive
    ],
)
def test_wrong_password(auth: BasicAuth, credentials: str) -> None:
    assert auth.role(basic(credentials)) is None


@pytest.mark.parametrize("credentials", ["nobody:share-password", "nobody:", ":share-password"])
def test_unknown_user(auth: BasicAuth, credentials: str) -> None:
    assert auth.role(basic(credentials)) is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic not base64!",
        "Basic c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA",  # padding missing
        "Basic c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA===",
        "Basic ====",
        "Basic é",
        "Basic c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA== extra",
    ],
)
def test_malformed_base64(auth: BasicAuth, header: str) -> None:
    assert auth.role(header) is None


def test_missing_colon(auth: BasicAuth) -> None:
    assert auth.role(basic("share-usershare-password")) is None
    assert auth.role(basic("share-user")) is None


def test_missing_colon_with_an_empty_password_is_refused() -> None:
    auth = BasicAuth({"user": ""})

    assert auth.role(basic("user")) is None
    assert auth.role(basic("user:")) is Role.ADMIN


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Basic",
        "Basic ",
        "Bearer c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA==",
        "Digest username=share-user",
        "c2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA==",
        "Basicc2hhcmUtdXNlcjpzaGFyZS1wYXNzd29yZA==",
    ],
)
def test_no_or_other_credentials(auth: BasicAuth, header: str | None) -> None:
    assert auth.role(header) is None


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_scheme_is_case_insensitive(auth: BasicAuth, scheme: str) -> None:
    assert auth.role(basic("share-user:share-password", scheme)) is Role.ADMIN


def test_surrounding_whitespace_is_ignored(auth: BasicAuth) -> None:
    header = basic("share-user:share-password")

    assert auth.role(f"  {header}  ") is Role.ADMIN
    assert auth.role(header.replace(" ", "   ", 1)) is Role.ADMIN


def test_known_user_is_checked_in_constant_time(
    auth: BasicAuth, compare_calls: list[tuple[bytes, bytes]]
) -> None:
    assert auth.role(basic("share-user:wrong-password")) is None

    assert compare_calls == [(b"share-password", b"wrong-password")]


def test_unknown_user_is_still_compared(
    auth: BasicAuth, compare_calls: list[tuple[bytes, bytes]]
) -> None:
    # Same work as for a known user, so timing does not tell which names exist.
    assert auth.role(basic("nobody:share-password")) is None

    assert len(compare_calls) == 1
    expected, given = compare_calls[0]
    assert given == b"share-password"
    assert expected not in {b"share-password", b"plugin-password"}


def test_unknown_user_with_the_dummy_password_is_refused(auth: BasicAuth) -> None:
    assert auth.role(basic(b"nobody:" + b"\x00" * 32)) is None


def test_enabled_only_with_users() -> None:
    assert not BasicAuth({}).enabled
    assert not BasicAuth({}, {}).enabled
    assert BasicAuth({"a": "b"}).enabled
    assert BasicAuth({}, {"a": "b"}).enabled
