"""HTTP Basic credentials of the token service, checked in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["BasicAuth", "Role"]

logger = logging.getLogger(__name__)


class Role(StrEnum):
    """What a set of credentials may do."""

    ADMIN = "admin"  # create, revoke and validate shares (USERS)
    VALIDATOR = "validator"  # validate and decode only (VALIDATION_USERS)


class BasicAuth:
    """Checks `Authorization: Basic` headers against configured users."""

    def __init__(
        self, admins: Mapping[str, str], validators: Mapping[str, str] | None = None
    ) -> None:
        self._users: dict[bytes, tuple[bytes, Role]] = {}
        for name, password in (validators or {}).items():
            self._users[name.encode()] = (password.encode(), Role.VALIDATOR)
        for name, password in admins.items():
            self._users[name.encode()] = (password.encode(), Role.ADMIN)
        self._dummy = b"\x00" * 32

    @property
    def enabled(self) -> bool:
        """Whether any credentials are configured (otherwise every route is open)."""
        return bool(self._users)

    def role(self, authorization: str | None) -> Role | None:
        """The role of valid credentials, or None; the reason is logged, never returned."""
        if not authorization:
            logger.info("authentication failed: no credentials")
            return None
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            logger.info("authentication failed: not Basic credentials")
            return None
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            logger.info("authentication failed: malformed Basic credentials")
            return None
        known = self._users.get(user)
        expected = known[0] if known else self._dummy
        # Compare even for unknown users so timing does not reveal which names exist.
        matches = hmac.compare_digest(expected, password)
        if known is None or not sep or not matches:
            logger.info("authentication failed: unknown user or wrong password")
            return None
        return known[1]
