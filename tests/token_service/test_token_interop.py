"""One token format: a token of either creation API opens on every route of both services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from share_landing.app import create_app as create_landing
from tests.factories import (
    SECRET,
    STUDY_ID,
    STUDY_UID,
    landing_settings,
    share_body,
    token_body,
)
from tests.token_service.conftest import ClientFactory

OHIF_ROOT = "https://pacs.example.org/ohif/"
VALIDATION = {
    "dicom-uid": STUDY_UID,
    "orthanc-id": STUDY_ID,
    "level": "study",
    "method": "get",
    "server-id": "standard-server-id",
}

Mint = Callable[[TestClient], str]


def via_put_shares(token_type: str) -> Mint:
    def mint(client: TestClient) -> str:
        token: str = client.put("/shares", json=share_body(type=token_type)).json()["token"]
        return token

    return mint


def via_put_tokens(token_type: str) -> Mint:
    def mint(client: TestClient) -> str:
        answer = client.put(f"/tokens/{token_type}", json=token_body(type=token_type))
        token: str = answer.json()["token"]
        return token

    return mint


def original(payload: dict[str, Any]) -> Mint:
    return lambda _: jwt.encode(payload, SECRET, algorithm="HS256")


MINTS = {
    "put-shares-stone": via_put_shares("stone-viewer-publication"),
    "put-shares-ohif": via_put_shares("ohif-viewer-publication"),
    "put-tokens-stone": via_put_tokens("stone-viewer-publication"),
    "put-tokens-osimis": via_put_tokens("osimis-viewer-publication"),
    "put-tokens-ohif": via_put_tokens("ohif-viewer-publication"),
    "put-tokens-volview": via_put_tokens("volview-viewer-publication"),
    "v23.1": original(
        {
            "id": "toto",
            "studies": [{"dicom_uid": STUDY_UID, "orthanc_id": STUDY_ID}],
            "anonymized": False,
            "type": "stone-viewer-publication",
            "expiration_date": None,
        }
    ),
    "v22.9": original(
        {
            "id": "toto",
            "dicom_uid": STUDY_UID,
            "orthanc_id": STUDY_ID,
            "type": "osimis-viewer-publication",
            "expiration_date": "2099-07-07T11:00:00+00:00",
        }
    ),
}


@pytest.fixture
def landing() -> Iterator[TestClient]:
    settings = landing_settings(public_ohif_root=OHIF_ROOT)
    with TestClient(create_landing(settings), follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("mint", MINTS.values(), ids=MINTS.keys())
def test_token_opens_on_every_route(
    make_client: ClientFactory, landing: TestClient, mint: Mint
) -> None:
    service = make_client(public_ohif_root=OHIF_ROOT)
    token = mint(service)
    for route in ("/shares/validate", "/tokens/validate"):
        answer = service.post(route, json=VALIDATION, headers={"token": token}).json()
        assert answer["granted"] is True, route
    decoded = service.post(
        "/tokens/decode", json={"token-key": "token", "token-value": token}
    ).json()
    assert decoded["error-code"] is None
    assert decoded["resources"] == [
        {"dicom-uid": STUDY_UID, "orthanc-id": STUDY_ID, "url": None, "level": "study"}
    ]
    opened = landing.get("/share-landing/", params={"token": token})
    assert opened.status_code == 307
    # The landing and decode send the viewer to the same place.
    assert opened.headers["location"] == decoded["redirect-url"]
