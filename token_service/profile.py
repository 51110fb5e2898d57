"""`POST /user/get-profile`: the anonymous profile a share-only Orthanc's plugin needs.

With `WebServiceRootUrl` (plugin 0.5+) the plugin runs in user-profile mode: for every
request matching a `Permissions` pattern it asks a profile, and from plugin 0.6.2 with
`CheckedLevel` its default permission `["post", "^/auth/tokens/decode$", ""]` is what
lets OE2's token landing page decode a link (protocol.md §4.2). orthanc-share has no
users, so every caller gets the anonymous profile (`shared.profiles`), which grants
nothing: share tokens still open their studies through `/tokens/validate`. A token
presented here (a share token, or anything else) changes nothing, and a user-name lookup
(`user-id`, plugin 0.10+ audit logs) answers JSON `null`, "unknown user".

The share Orthanc's configuration that uses it (orthanc-share as the auth service)::

    "Authorization": {
      "WebServiceRootUrl": "http://token-service:8000/",
      "WebServiceUsername": "share-plugin",         // a VALIDATION_USERS entry
      "WebServicePassword": "...",
      "WebServiceIdentifier": "standard-server-id", // = SERVER_IDENTIFIER
      "StandardConfigurations": [
        "stone-webviewer", "osimis-web-viewer", "ohif", "volview", "orthanc-explorer-2"
      ],
      "CheckedLevel": "studies"
    }

`WebServiceRootUrl` derives `/tokens/validate`, `/tokens/decode`, the creation base
`/tokens/` and `/user/get-profile` (and `/settings/roles` from plugin 0.8, not served
here: 0.8.2+ tolerates that). `orthanc-explorer-2` leaves OE2's token landing page
(`/ui/app/token-landing.html`) unchecked; point `PUBLIC_LANDING_ROOT` at it to send
links there. VALIDATION_USERS credentials cannot create tokens, so the creation route the
root URL also registers on the share Orthanc is refused by this service (403) even if
the plugin let a request through. An admin Orthanc needs only
`"WebServiceTokenCreationBaseUrl": "http://token-service:8000/tokens/"` with USERS
credentials: it installs no filter and forwards OE2's `PUT /auth/tokens/{type}`.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from token_service.deps import CredentialsDep, ServicesDep

__all__ = ["ProfileRequest", "router"]

router = APIRouter()

_NULL = b"null"


class ProfileRequest(BaseModel):
    """Every body the plugin posts (0.5-0.9: `identifier`; 0.10+: `server-id`, `user-id`)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    token_key: str | None = Field(default=None, alias="token-key")
    token_value: str | None = Field(default=None, alias="token-value")
    user_id: str | None = Field(default=None, alias="user-id")
    server_id: str | None = Field(default=None, alias="server-id")
    identifier: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _strings_only(cls, value: object) -> object:
        return value if isinstance(value, str) else None


@router.post("/user/get-profile", dependencies=[CredentialsDep], tags=["profile"])
async def get_profile(
    services: ServicesDep, body: Annotated[ProfileRequest | None, Body()] = None
) -> Response:
    """The anonymous profile for any caller; `null` (unknown user) for a user-id lookup."""
    if body is not None and body.user_id is not None:
        return Response(_NULL, media_type="application/json")
    profile = json.dumps(services.anonymous_profile.answer()).encode()
    return Response(profile, media_type="application/json")
