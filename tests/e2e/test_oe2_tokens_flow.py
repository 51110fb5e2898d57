"""Orthanc Explorer 2 0.7+ through the current plugin: create, decode, open.

An admin Orthanc forwards OE2's `PUT /auth/tokens/{type}` to the token service's
`/tokens/`; a share Orthanc (plugin with `WebServiceRootUrl`) decodes the link as OE2's
token landing page does, then lets the viewer read the study with the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.dicom_data import GeneratedData
from tests.e2e.orthanc import EmulatorConfig, OrthancFactory, OrthancServer
from tests.factories import SECRET
from tests.servers import ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e

OE2 = ("oe2", "oe2-password")
PLUGIN = ("share-plugin", "plugin-password")


@dataclass
class Oe2Stack:
    admin: OrthancServer
    share: OrthancServer
    token_service: ServiceProcess
    data: GeneratedData


@pytest.fixture(scope="module")
def oe2_stack(
    orthanc_factory: OrthancFactory,
    generated_data: GeneratedData,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Oe2Stack]:
    port = free_port()
    service = f"http://127.0.0.1:{port}"
    admin = orthanc_factory(
        "oe2-admin",
        EmulatorConfig(
            mode="current",
            creation_base_url=f"{service}/tokens/",
            username=OE2[0],
            password=OE2[1],
        ),
    )
    share = orthanc_factory(
        "oe2-share",
        EmulatorConfig(
            mode="current",
            root_url=f"{service}/",
            username=PLUGIN[0],
            password=PLUGIN[1],
            server_id="standard-server-id",
            standard_configurations=("stone-webviewer", "orthanc-explorer-2"),
        ),
    )
    env = {
        "SECRET_KEY": SECRET,
        "PUBLIC_ORTHANC_ROOT": f"{share.base_url}/",
        "PUBLIC_LANDING_ROOT": f"{share.base_url}/ui/app/token-landing.html",
        "SERVER_IDENTIFIER": "standard-server-id",
        "USERS": f'{{"{OE2[0]}": "{OE2[1]}"}}',
        "VALIDATION_USERS": f'{{"{PLUGIN[0]}": "{PLUGIN[1]}"}}',
    }
    token_service = start_service("token-service", env, tmp_path_factory.mktemp("oe2"), port=port)
    yield Oe2Stack(admin, share, token_service, generated_data)
    token_service.stop()
    admin.stop()
    share.stop()


def create(stack: Oe2Stack, token_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """What OE2's share modal sends to its own Orthanc."""
    response = stack.admin.http.put(f"/auth/tokens/{token_type}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_stone_publication_created_decoded_and_opened(oe2_stack: Oe2Stack) -> None:
    study = oe2_stack.data.studies[0]
    orthanc_id = oe2_stack.admin.ids.study(study)
    answer = create(
        oe2_stack,
        "stone-viewer-publication",
        {
            "Type": "stone-viewer-publication",
            "Resources": [
                {"OrthancId": orthanc_id, "DicomUid": study.study_instance_uid, "Level": "study"}
            ],
            "ValidityDuration": 15 * 24 * 3600,
            "Id": "ignored by the plugin",
        },
    )
    token = answer["Token"]
    assert answer["Url"] == f"{oe2_stack.share.base_url}/ui/app/token-landing.html?token={token}"

    # OE2's token landing page, served by the share Orthanc.
    decoded = oe2_stack.share.http.post(
        "/auth/tokens/decode", json={"TokenKey": "token", "TokenValue": token}
    )
    assert decoded.status_code == 200, decoded.text
    reply = decoded.json()
    assert "ErrorCode" not in reply
    assert reply["TokenType"] == "stone-viewer-publication"
    assert reply["ResourcesDicomIds"] == [study.study_instance_uid]
    assert reply["ResourcesOrthancIds"] == [orthanc_id]
    redirect = urlsplit(reply["RedirectUrl"])
    assert reply["RedirectUrl"].startswith(
        f"{oe2_stack.share.base_url}/stone-webviewer/index.html?"
    )
    assert parse_qs(redirect.query)["token"] == [token]

    # The Stone viewer then reads the study with the token, and nothing else.
    auth = {"Authorization": f"Bearer {token}"}
    uid = study.study_instance_uid
    series = oe2_stack.share.http.get(f"/dicom-web/studies/{uid}/series", headers=auth)
    assert series.status_code == 200
    assert len(series.json()) == len(study.series)
    assert (
        oe2_stack.share.http.get(f"/dicom-web/studies/{uid}/metadata", headers=auth).status_code
        == 200
    )
    other = oe2_stack.data.studies[1].study_instance_uid
    assert (
        oe2_stack.share.http.get(f"/dicom-web/studies/{other}/series", headers=auth).status_code
        == 403
    )


def test_landing_page_decodes_bad_links_as_errors(oe2_stack: Oe2Stack) -> None:
    for value in ("not-a-token", ""):
        reply = oe2_stack.share.http.post(
            "/auth/tokens/decode", json={"TokenKey": "token", "TokenValue": value}
        ).json()
        assert reply["ErrorCode"] == "invalid"
        assert reply["ResourcesDicomIds"] == []


def test_instant_link_for_a_download(oe2_stack: Oe2Stack) -> None:
    study = oe2_stack.data.studies[2]
    orthanc_id = oe2_stack.admin.ids.study(study)
    answer = create(
        oe2_stack,
        "download-instant-link",
        {
            "Type": "download-instant-link",
            "Resources": [
                {"OrthancId": orthanc_id, "DicomUid": study.study_instance_uid, "Level": "study"}
            ],
            "ValidityDuration": 200,
        },
    )
    # OE2 builds the link itself: its archive URL plus ?token=
    assert answer["Url"] is None
    archive = oe2_stack.share.http.get(
        f"/studies/{orthanc_id}/archive", params={"token": answer["Token"]}
    )
    # The Stone preset reads tokens from the Authorization header only; OE2's preset adds
    # the `token` argument, which is what download links use.
    assert archive.status_code == 200
    assert archive.content[:2] == b"PK"


def test_share_orthanc_credentials_cannot_mint(oe2_stack: Oe2Stack) -> None:
    study = oe2_stack.data.studies[0]
    body = {"Resources": [{"DicomUid": study.study_instance_uid, "Level": "study"}]}
    # The share Orthanc's filter refuses the route to anonymous browsers...
    response = oe2_stack.share.http.put("/auth/tokens/stone-viewer-publication", json=body)
    assert response.status_code == 403
    # ...and its plugin's credentials could not mint even if it forwarded the request.
    direct = httpx.put(
        f"{oe2_stack.token_service.url}/tokens/stone-viewer-publication",
        json={"resources": [{"dicom-uid": study.study_instance_uid, "level": "study"}]},
        auth=PLUGIN,
    )
    assert direct.status_code == 403
