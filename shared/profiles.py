"""The anonymous user profile answered to the authorization plugin's `/user/get-profile`.

A share Orthanc whose plugin has a user-profile URL (`WebServiceRootUrl`, plugin 0.5+)
asks a profile for every request that matches one of its `Permissions` patterns, with
the request's token or anonymously. orthanc-share knows no users: every caller gets the
anonymous profile, and what opens a study is the share token, checked by validation.

The profile must therefore grant nothing. A permission would let anyone, without any
share link, do what it names on the whole Orthanc (the successor's default profile
grants `upload`, protocol.md §8 #19); an authorized label makes the plugin's
`/tools/find` override list every study carrying it (`*`: every study). A profile file
may set `name`, `validity` and `groups`; one that grants anything is refused at startup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigurationError

__all__ = ["DEFAULT_ANONYMOUS_PROFILE", "AnonymousProfile", "load_anonymous_profile"]

MAX_PROFILE_BYTES = 64 * 1024

# What each permission of the plugin (protocol.md §6.4) would give anyone.
_WHY_REFUSED = {
    "all": "every permission, including deleting and modifying studies",
    "view": "viewing the studies it covers without a share link",
    "download": "downloading the studies it covers without a share link",
    "delete": "deleting studies",
    "send": "sending studies to other modalities and peers",
    "modify": "modifying studies",
    "anonymize": "anonymizing studies",
    "upload": "storing new instances (POST /instances)",
    "q-r-remote-modalities": "querying and retrieving from remote modalities",
    "settings": "changing the Orthanc settings",
    "api-view": "reading the REST API without a share link",
    "edit-labels": "changing labels, hence what other profiles may see",
    "admin-permissions": "changing the roles and permissions",
    "audit-logs": "reading the audit logs",
    "worklists": "reading and creating worklists",
    "share": "creating share links for any study",
}


class AnonymousProfile(BaseModel):
    """The profile of `/user/get-profile`: a name, no permission, no label."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    name: str = Field(default="Anonymous", min_length=1, max_length=256)
    permissions: tuple[str, ...] = ()
    authorized_labels: tuple[str, ...] = Field(default=(), alias="authorized-labels")
    groups: tuple[str, ...] = ()
    validity: int = Field(default=60, ge=0, le=86400)
    user_id: None = Field(default=None, alias="user-id")

    def refusals(self) -> list[str]:
        """What this profile would grant beyond share links, one phrase each."""
        found = []
        for permission in self.permissions:
            why = _WHY_REFUSED.get(permission, "an unknown permission")
            found.append(f"permission {permission!r} ({why})")
        for label in self.authorized_labels:
            what = "every study" if label == "*" else f"the studies labelled {label!r}"
            found.append(f"authorized label {label!r} (lists {what} to anyone)")
        return found

    def answer(self) -> dict[str, Any]:
        """The JSON object the plugin reads (`user-id` left out: null means none)."""
        return {
            "name": self.name,
            "permissions": list(self.permissions),
            "authorized-labels": list(self.authorized_labels),
            "groups": list(self.groups),
            "validity": self.validity,
        }


DEFAULT_ANONYMOUS_PROFILE = AnonymousProfile()


def _without_line_comments(text: str) -> str:
    # The successor's anonymous-profile.json starts with `//` comment lines.
    return "\n".join("" if line.lstrip().startswith("//") else line for line in text.splitlines())


def load_anonymous_profile(
    path: Path | None, setting: str = "ANONYMOUS_PROFILE_FILE"
) -> AnonymousProfile:
    """Read and check a profile file; ConfigurationError, naming `setting`, if unusable."""
    if path is None:
        return DEFAULT_ANONYMOUS_PROFILE
    prefix = f"invalid configuration: {setting}"
    try:
        raw = path.read_bytes()[: MAX_PROFILE_BYTES + 1]
    except OSError as error:
        raise ConfigurationError(f"{prefix}: cannot read {path} ({type(error).__name__})") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ConfigurationError(f"{prefix}: {path} is larger than {MAX_PROFILE_BYTES} bytes")
    try:
        data = json.loads(_without_line_comments(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise ConfigurationError(f"{prefix}: {path} is not a JSON object") from None
    try:
        profile = AnonymousProfile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'profile'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigurationError(f"{prefix}: {path}: {problems}") from None
    refused = profile.refusals()
    if refused:
        raise ConfigurationError(
            f"{prefix}: {path} grants what share links do not, to anyone who reaches the "
            f"share Orthanc without a link: {', '.join(refused)}; the anonymous profile must "
            "have empty permissions and authorized-labels"
        )
    return profile
