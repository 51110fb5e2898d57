"""The authorization emulator, checked on the wire against protocol.md §3 and §4.

Every test talks to a real Orthanc 1.10.1 running the emulator, which calls a recording
stand-in for the token service. Servers are shared per module: tests that need the decision
cache use fresh token values, so cached decisions never leak from one test to another.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import httpx
import pytest

from .dicom_data import GeneratedData, OrthancIds
from .orthanc import (
    EmulatorConfig,
    OrthancFactory,
    OrthancServer,
    OrthancStartupError,
    SeededStorage,
)
from .recording_service import RecordedRequest, RecordingService, Reply

pytestmark = pytest.mark.e2e

USERNAME = "share-user"
PASSWORD = "share-password"
BASIC = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
TIMEOUT_SECONDS = 1.0
VALIDATE_PATHS = {"legacy": "/shares/validate", "current": "/tokens/validate"}
MODES = tuple(VALIDATE_PATHS)
GRANT = Reply.json({"granted": True, "validity": 0})
DENY = Reply.json({"granted": False, "validity": 0})


def legacy_config(service_url: str) -> EmulatorConfig:
    """The v23.1 demo's share Orthanc (plugin 0.4.x)."""
    return EmulatorConfig(
        mode="legacy",
        web_service=f"{service_url}/shares/validate",
        username=USERNAME,
        password=PASSWORD,
        server_id="standard-server-id",
        standard_configurations=("osimis-web-viewer", "stone-webviewer"),
        checked_level="studies",
        timeout_seconds=TIMEOUT_SECONDS,
    )


def current_config(service_url: str) -> EmulatorConfig:
    """The successor's share Orthanc (plugin 0.11)."""
    return EmulatorConfig(
        mode="current",
        root_url=f"{service_url}/",
        username=USERNAME,
        password=PASSWORD,
        server_id="anonymized-server-id",
        standard_configurations=("osimis-web-viewer", "stone-webviewer", "orthanc-explorer-2"),
        checked_level="studies",
        timeout_seconds=TIMEOUT_SECONDS,
    )


def fresh_token() -> str:
    """A token value no other test uses, so no cached decision applies to it."""
    return f"e2e-{uuid.uuid4().hex}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True, slots=True)
class Target:
    """One study of the seed data, with one of its series and instances, by both ids."""

    study_id: str
    study_uid: str
    series_id: str
    series_uid: str
    instance_id: str
    instance_uid: str
    patient_id: str  # Orthanc id
    patient_dicom_id: str  # PatientID

    def fill(self, template: str) -> str:
        return template.format(
            study=self.study_id,
            uid=self.study_uid,
            series=self.series_id,
            suid=self.series_uid,
            instance=self.instance_id,
            iuid=self.instance_uid,
            patient=self.patient_id,
            pid=self.patient_dicom_id,
        )


def make_target(data: GeneratedData, ids: OrthancIds, index: int) -> Target:
    study = data.studies[index]
    series = study.series[-1]
    instance = series.instances[-1]
    return Target(
        study_id=ids.study(study),
        study_uid=study.study_instance_uid,
        series_id=ids.series[series.series_instance_uid],
        series_uid=series.series_instance_uid,
        instance_id=ids.instances[instance.sop_instance_uid],
        instance_uid=instance.sop_instance_uid,
        patient_id=ids.patients[study.patient.patient_id],
        patient_dicom_id=study.patient.patient_id,
    )


def study_call(target: Target, method: str = "get") -> dict[str, object]:
    """The study-level part of a validation body."""
    return {
        "method": method,
        "level": "study",
        "orthanc-id": target.study_id,
        "dicom-uid": target.study_uid,
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def service() -> Iterator[RecordingService]:
    with RecordingService() as running:
        yield running


@pytest.fixture(autouse=True)
def _default_answers(service: RecordingService) -> None:
    service.reset()
    for path in VALIDATE_PATHS.values():
        service.respond(path, GRANT)


@pytest.fixture(scope="module")
def servers(orthanc_factory: OrthancFactory, service: RecordingService) -> dict[str, OrthancServer]:
    return {
        "legacy": orthanc_factory("emulator-legacy", legacy_config(service.url)),
        "current": orthanc_factory("emulator-current", current_config(service.url)),
    }


@pytest.fixture(scope="module")
def admin(orthanc_factory: OrthancFactory, service: RecordingService) -> OrthancServer:
    """An Orthanc that only mints and decodes tokens: no filter, like the admin Orthanc."""
    return orthanc_factory(
        "emulator-admin",
        EmulatorConfig(
            mode="current",
            creation_base_url=f"{service.url}/tokens/",
            decoder_url=f"{service.url}/tokens/decode",
            username=USERNAME,
            password=PASSWORD,
            server_id="admin-server-id",
            timeout_seconds=TIMEOUT_SECONDS,
        ),
    )


@pytest.fixture(scope="module")
def target(orthanc_seed: SeededStorage) -> Target:
    return make_target(orthanc_seed.data, orthanc_seed.ids, 3)


@pytest.fixture(scope="module")
def other_target(orthanc_seed: SeededStorage) -> Target:
    return make_target(orthanc_seed.data, orthanc_seed.ids, 0)


# --------------------------------------------------------------------------- request format


def test_legacy_request_is_the_0_4_payload(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers["legacy"].http.get(
        f"/dicom-web/studies/{target.study_uid}/series", headers=bearer("abc")
    )

    assert response.status_code == 200
    [call] = service.requests
    assert (call.method, call.path) == ("POST", "/shares/validate")
    assert call.json == {
        **study_call(target),
        "token-key": "Authorization",
        "token-value": "Bearer abc",
        "identifier": "standard-server-id",
    }
    assert call.body.startswith(b'{\n   "') and b'" : "' in call.body  # pretty-printed
    assert call.header_values("Authorization") == [BASIC]  # the Bearer one is not forwarded
    assert call.header("Content-Type") == "application/json"
    assert call.header("Expect") is None
    assert call.header("token") is None


def test_current_request_is_the_0_11_payload(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers["current"].http.get(
        f"/instances/{target.instance_id}/file", headers=bearer("abc")
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    [call] = service.requests
    assert (call.method, call.path) == ("POST", "/tokens/validate")
    expected = {
        **study_call(target),
        "token-key": "Authorization",
        "token-value": "Bearer abc",
        "server-id": "anonymized-server-id",
    }
    assert call.json == expected
    assert call.body == json.dumps(expected, separators=(",", ":"), sort_keys=True).encode()
    assert call.header_values("Authorization") == [BASIC]
    assert call.header("Expect") == ""


@pytest.mark.parametrize("mode", MODES)
def test_token_header_is_forwarded_under_its_configured_name(
    mode: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers[mode].http.get(f"/studies/{target.study_id}", headers={"token": "xyz"})

    assert response.status_code == 200
    [call] = service.requests
    assert call.json["token-key"] == "token"
    assert call.json["token-value"] == "xyz"
    assert call.header("token") == "xyz"
    assert call.header_values("Authorization") == [BASIC]


def test_legacy_get_argument_token_is_sent_in_the_body_only(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    legacy = servers["legacy"].http

    assert legacy.get(f"/instances/{target.instance_id}/preview?token=xyz").status_code == 200
    [call] = service.requests
    assert (call.json["token-key"], call.json["token-value"]) == ("token", "xyz")
    assert call.header("token") is None  # forwarding GET-argument tokens came in 0.7.1

    service.clear()
    # 0.4.1 matches GET-argument names exactly: "Token" is no token at all.
    assert legacy.get(f"/instances/{target.instance_id}/preview?Token=xyz").status_code == 403
    assert service.requests == []


def test_current_get_argument_token_is_also_forwarded_as_header(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers["current"].http.get(f"/instances/{target.instance_id}/preview?TOKEN=xyz")

    assert response.status_code == 200
    [call] = service.requests
    assert (call.json["token-key"], call.json["token-value"]) == ("token", "xyz")
    assert call.header("token") == "xyz"


def test_without_credentials_authorization_is_forwarded_and_identifier_is_null(
    orthanc_factory: OrthancFactory, service: RecordingService, target: Target
) -> None:
    # The v23.1 minimal setup: no Basic auth (a username alone is not enough), no identifier.
    minimal = EmulatorConfig(
        mode="legacy",
        web_service=f"{service.url}/shares/validate",
        username=USERNAME,
        standard_configurations=("stone-webviewer",),
        token_get_arguments=("token",),
        timeout_seconds=TIMEOUT_SECONDS,
    )
    server = orthanc_factory("emulator-no-credentials", minimal)

    assert server.http.get(f"/studies/{target.study_id}", headers=bearer("abc")).status_code == 200
    [call] = service.requests
    assert call.header_values("Authorization") == ["Bearer abc"]
    assert call.json["identifier"] is None

    service.clear()
    # Same URL in current mode: "WebService" is still the validation URL's legacy alias, and
    # a 0.4-era service now sees "server-id" instead of "identifier".
    server.restart(replace(minimal, mode="current"))
    assert server.http.get(f"/studies/{target.study_id}", headers=bearer("abc")).status_code == 200
    [call] = service.requests
    assert call.path == "/shares/validate"
    assert call.header_values("Authorization") == ["Bearer abc"]
    assert call.json["server-id"] is None
    assert "identifier" not in call.json


def test_legacy_without_configured_tokens_calls_without_token_and_never_caches(
    orthanc_factory: OrthancFactory, service: RecordingService, target: Target
) -> None:
    server = orthanc_factory(
        "emulator-no-tokens",
        EmulatorConfig(
            mode="legacy",
            web_service=f"{service.url}/shares/validate",
            timeout_seconds=TIMEOUT_SECONDS,
        ),
    )
    service.respond("/shares/validate", Reply.json({"granted": True, "validity": 60}))

    for _ in range(2):
        assert server.http.get(f"/studies/{target.study_id}").status_code == 200

    assert [call.json for call in service.requests] == [
        {**study_call(target), "identifier": None}
    ] * 2


# --------------------------------------------------------------------------- tokens


def test_legacy_without_token_denies_without_calling(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    assert servers["legacy"].http.get(f"/studies/{target.study_id}").status_code == 403
    assert service.requests == []


@pytest.mark.parametrize("granted", [True, False])
def test_current_without_token_makes_one_anonymous_call(
    granted: bool, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    service.respond("/tokens/validate", GRANT if granted else DENY)

    response = servers["current"].http.get(f"/studies/{target.study_id}")

    assert response.status_code == (200 if granted else 403)
    [call] = service.requests
    assert call.json == {**study_call(target), "server-id": "anonymized-server-id"}
    assert call.header("token") is None
    assert call.header_values("Authorization") == [BASIC]


@pytest.mark.parametrize("mode", MODES)
def test_tokens_are_tried_headers_first_then_by_name_until_one_grants(
    mode: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    tokens = {"Authorization": fresh_token(), "token": fresh_token(), "arg": fresh_token()}
    request_headers = {"token": tokens["token"], **bearer(tokens["Authorization"])}
    url = f"/studies/{target.study_id}?token={tokens['arg']}"
    service.respond(VALIDATE_PATHS[mode], DENY)

    assert servers[mode].http.get(url, headers=request_headers).status_code == 403
    tried = [(call.json["token-key"], call.json["token-value"]) for call in service.requests]
    assert tried == [
        ("Authorization", f"Bearer {tokens['Authorization']}"),
        ("token", tokens["token"]),
        ("token", tokens["arg"]),
    ]

    service.clear()
    service.respond(
        VALIDATE_PATHS[mode],
        lambda call: GRANT if call.json["token-value"] == tokens["token"] else DENY,
    )
    assert servers[mode].http.get(url, headers=request_headers).status_code == 200
    assert [call.json["token-key"] for call in service.requests] == ["Authorization", "token"]


def test_get_arguments_are_ignored_on_other_methods(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    # Orthanc parses query arguments for GET only: this POST carries no token.
    service.respond("/tokens/validate", DENY)

    url = f"/studies/{target.study_id}/anonymize?token=xyz"
    assert servers["current"].http.post(url, json={}).status_code == 403

    [call] = service.requests
    assert call.json == {**study_call(target, "post"), "server-id": "anonymized-server-id"}


# --------------------------------------------------------------------------- URI mapping

NATIVE_ROUTES = (
    "/studies/{study}",
    "/studies/{study}/series",
    "/studies/{study}/archive",
    "/series/{series}",
    "/series/{series}/instances",
    "/instances/{instance}",
    "/instances/{instance}/file",
    "/instances/{instance}/tags",
    "/instances/{instance}/preview",
    "/instances/{instance}/frames/0/preview",
)
DICOMWEB_ROUTES = (
    "/dicom-web/studies/{uid}",
    "/dicom-web/studies/{uid}/series",
    "/dicom-web/studies/{uid}/metadata",
    "/dicom-web/studies/{uid}/instances",
    "/dicom-web/studies/{uid}/rendered",
    "/dicom-web/studies/{uid}/series/{suid}",
    "/dicom-web/studies/{uid}/series/{suid}/metadata",
    "/dicom-web/studies/{uid}/series/{suid}/instances",
    "/dicom-web/studies/{uid}/series/{suid}/rendered",
    "/dicom-web/studies/{uid}/series/{suid}/instances/{iuid}",
    "/dicom-web/studies/{uid}/series/{suid}/instances/{iuid}/metadata",
    "/dicom-web/studies/{uid}/series/{suid}/instances/{iuid}/rendered",
    "/dicom-web/studies/{uid}/series/{suid}/instances/{iuid}/frames/1",
    "/dicom-web/studies/{uid}/series/{suid}/instances/{iuid}/frames/1/rendered",
    "/dicom-web/studies?StudyInstanceUID={uid}",
    "/dicom-web/studies?0020000D={uid}",
    "/dicom-web/series?0020000D={uid}",
    "/dicom-web/series?studyinstanceuid={uid}",
    "/dicom-web/instances?StudyInstanceUID={uid}&SeriesInstanceUID={suid}",
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", NATIVE_ROUTES + DICOMWEB_ROUTES)
def test_route_is_one_study_level_call_with_both_ids(
    mode: str,
    route: str,
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
) -> None:
    response = servers[mode].http.get(target.fill(route), headers={"token": "xyz"})

    assert response.status_code == 200
    [call] = service.requests
    assert {key: call.json[key] for key in ("method", "level", "orthanc-id", "dicom-uid")} == (
        study_call(target)
    )


def test_dicomweb_path_mixing_two_studies_is_checked_on_the_first_and_refused_by_orthanc(
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
    other_target: Target,
) -> None:
    # Like the plugin, only the study in the path is validated; DICOMweb 1.7 then refuses a
    # series that does not belong to it, so a token for one study cannot read another.
    service.respond(
        "/tokens/validate",
        lambda call: GRANT if call.json["orthanc-id"] == other_target.study_id else DENY,
    )
    url = f"/dicom-web/studies/{other_target.study_uid}/series/{target.series_uid}/metadata"

    response = servers["current"].http.get(url, headers={"token": "xyz"})

    assert response.status_code == 404
    [call] = service.requests
    assert call.json["orthanc-id"] == other_target.study_id


def test_archive_tool_maps_each_resource_to_its_study(
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
    other_target: Target,
) -> None:
    url = f"/tools/create-archive?resources={other_target.study_id},{target.instance_id}"

    response = servers["current"].http.get(url, headers={"token": "xyz"})

    assert response.status_code == 405  # passed the filter; Orthanc 1.10.1 has no GET form
    assert [(call.json["orthanc-id"], call.json["dicom-uid"]) for call in service.requests] == [
        (other_target.study_id, other_target.study_uid),
        (target.study_id, target.study_uid),
    ]


DENIED_WITHOUT_CALL = (
    "/studies",
    "/studies/",
    "/patients",
    "/dicom-web/studies",
    "/dicom-web/studies?StudyInstanceUID=*",
    "/dicom-web/studies?PatientID={pid}",
    "/patients/{patient}",
    "/patients/{patient}/archive",
    "/tools/create-archive",
    "/wado?requestType=WADO&studyUID={uid}&seriesUID={suid}&objectUID={iuid}",
)


@pytest.mark.parametrize("route", DENIED_WITHOUT_CALL)
def test_current_denies_system_and_patient_uris_without_calling(
    route: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers["current"].http.get(target.fill(route), headers={"token": "xyz"})

    assert response.status_code == 403
    assert service.requests == []


def test_legacy_validates_system_uris_with_their_uri(
    servers: dict[str, OrthancServer], service: RecordingService
) -> None:
    # In 0.4.x the system level stays checked under CheckedLevel=studies.
    response = servers["legacy"].http.get("/studies/", headers={"token": "xyz"})

    assert response.status_code == 200
    [call] = service.requests
    assert call.json == {
        "method": "get",
        "level": "system",
        "uri": "/studies",
        "token-key": "token",
        "token-value": "xyz",
        "identifier": "standard-server-id",
    }


@pytest.mark.parametrize("route", ["/patients/{patient}", "/dicom-web/studies?PatientID={pid}"])
def test_legacy_does_not_reproduce_the_open_patient_routes(
    route: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    response = servers["legacy"].http.get(target.fill(route), headers={"token": "xyz"})

    assert response.status_code == 403
    assert service.requests == []


UNKNOWN_RESOURCES = (
    "/studies/0123456789abcdef-01234567-89abcdef-01234567-89abcdef",
    "/instances/0123456789abcdef-01234567-89abcdef-01234567-89abcdef/file",
    "/dicom-web/studies/1.2.3.4.5/series",
    "/dicom-web/studies/{uid}/series/1.2.3.4.5/metadata",
    "/dicom-web/studies?StudyInstanceUID=1.2.3.4.5",
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", UNKNOWN_RESOURCES)
def test_unknown_resources_are_denied_without_calling(
    mode: str,
    route: str,
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
) -> None:
    response = servers[mode].http.get(target.fill(route), headers={"token": "xyz"})

    assert response.status_code == 403  # not 404, as with the official plugin
    assert service.requests == []


@pytest.mark.parametrize(
    ("mode", "route", "status"),
    [
        ("legacy", "/system", 200),
        ("legacy", "/stone-webviewer/index.html", 404),
        ("legacy", "/osimis-viewer/app/index.html", 404),
        ("legacy", "/osimis-viewer/config.js", 404),
        ("current", "/system", 200),
        ("current", "/stone-webviewer/index.html", 404),
        ("current", "/ui/app/index.html", 404),
        ("current", "/ui/api/configuration", 404),
    ],
)
def test_unchecked_resources_and_folders_do_not_call(
    mode: str,
    route: str,
    status: int,
    servers: dict[str, OrthancServer],
    service: RecordingService,
) -> None:
    # 404: the filter let the request through, but the viewer is not installed.
    assert servers[mode].http.get(route).status_code == status
    assert service.requests == []


def test_unchecked_folders_are_for_get_only(
    servers: dict[str, OrthancServer], service: RecordingService
) -> None:
    response = servers["current"].http.post("/stone-webviewer/index.html", content=b"x")

    assert response.status_code == 403
    assert service.requests == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/studies/{study}/anonymize"),
        ("PUT", "/studies/{study}/metadata/1024"),
        ("DELETE", "/studies/{study}"),
        ("DELETE", "/instances/{instance}"),
    ],
)
def test_other_methods_are_sent_in_lower_case(
    method: str,
    path: str,
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
) -> None:
    # The service denies, so Orthanc never modifies or deletes the shared seed data.
    service.respond("/tokens/validate", DENY)

    response = servers["current"].http.request(
        method, target.fill(path), headers={"token": "xyz"}, content=b"{}"
    )

    assert response.status_code == 403
    [call] = service.requests
    assert call.json["method"] == method.lower()
    assert (call.json["level"], call.json["orthanc-id"]) == ("study", target.study_id)


# --------------------------------------------------------------------------- caching


@pytest.mark.parametrize("mode", MODES)
def test_validity_zero_means_no_cache(
    mode: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    token = fresh_token()
    for _ in range(3):
        assert (
            servers[mode].http.get(f"/studies/{target.study_id}", headers=bearer(token)).is_success
        )
    assert len(service.requests) == 3


@pytest.mark.parametrize("mode", MODES)
def test_validity_is_honoured_per_method_resource_and_token(
    mode: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    http = servers[mode].http
    token = fresh_token()
    service.respond(VALIDATE_PATHS[mode], Reply.json({"granted": True, "validity": 2}))

    assert http.get(f"/studies/{target.study_id}", headers=bearer(token)).status_code == 200
    # The entry was stored before this response arrived, so it expires before cached_until.
    cached_until = time.monotonic() + 2
    # Same study through other routes, with a query string: still one cache entry.
    assert http.get(f"/series/{target.series_id}", headers=bearer(token)).status_code == 200
    preview = f"/instances/{target.instance_id}/preview?quality=50"
    assert http.get(preview, headers=bearer(token)).status_code == 200
    assert len(service.requests) == 1

    service.respond(VALIDATE_PATHS[mode], Reply.json({"granted": False, "validity": 2}))
    # Another method or another token is another entry.
    assert http.delete(f"/studies/{target.study_id}", headers=bearer(token)).status_code == 403
    assert http.get(f"/studies/{target.study_id}", headers=bearer(fresh_token())).status_code == 403
    assert len(service.requests) == 3

    assert time.monotonic() < cached_until  # the checks above ran inside the window
    time.sleep(max(0.0, cached_until + 0.1 - time.monotonic()))
    service.respond(VALIDATE_PATHS[mode], GRANT)
    assert http.get(f"/studies/{target.study_id}", headers=bearer(token)).status_code == 200
    assert len(service.requests) == 4


def test_denials_are_cached_for_their_validity(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    token = fresh_token()
    service.respond("/tokens/validate", Reply.json({"granted": False, "validity": 30}))

    for _ in range(2):
        response = servers["current"].http.get(f"/studies/{target.study_id}", headers=bearer(token))
        assert response.status_code == 403
    assert len(service.requests) == 1


def test_anonymous_decisions_are_cached(
    servers: dict[str, OrthancServer],
    service: RecordingService,
    orthanc_seed: SeededStorage,
) -> None:
    # Anonymous cache keys carry no token, so this test owns a study nobody else uses.
    own = make_target(orthanc_seed.data, orthanc_seed.ids, 5)
    service.respond("/tokens/validate", Reply.json({"granted": True, "validity": 30}))

    for _ in range(2):
        assert servers["current"].http.get(f"/studies/{own.study_id}").status_code == 200
    [call] = service.requests
    assert "token-key" not in call.json


# --------------------------------------------------------------------------- failures

BROKEN_ANSWERS = {
    "status-500": Reply.json({"granted": True, "validity": 60}, status=500),
    "status-404": Reply.json({"granted": True, "validity": 60}, status=404),
    "redirect": Reply(status=302, headers={"Location": "/tokens/validate"}),
    "not-json": Reply(body=b"granted"),
    "json-array": Reply.json([{"granted": True}]),
    "granted-missing": Reply.json({"validity": 60}),
    "granted-string": Reply.json({"granted": "true", "validity": 60}),
    "validity-float": Reply.json({"granted": True, "validity": 60.0}),
    "validity-string": Reply.json({"granted": True, "validity": "60"}),
    "validity-negative": Reply.json({"granted": True, "validity": -1}),
    "validity-bool": Reply.json({"granted": True, "validity": True}),
    "validity-null": Reply.json({"granted": True, "validity": None}),
    "validity-beyond-int32": Reply.json({"granted": True, "validity": 2**31}),
    "timeout": Reply.json({"granted": True, "validity": 60}, delay_seconds=TIMEOUT_SECONDS + 0.5),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", list(BROKEN_ANSWERS))
def test_broken_answers_deny_and_are_not_cached(
    mode: str,
    answer: str,
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
) -> None:
    http = servers[mode].http
    token = fresh_token()
    path = VALIDATE_PATHS[mode]
    service.respond(path, BROKEN_ANSWERS[answer])

    assert http.get(f"/studies/{target.study_id}", headers=bearer(token)).status_code == 403

    service.respond(path, Reply.json({"granted": True, "validity": 60}))
    assert http.get(f"/studies/{target.study_id}", headers=bearer(token)).status_code == 200
    assert len(service.requests_to(path)) == 2


@pytest.mark.parametrize("answer", ["status-500", "timeout"])
def test_failures_never_log_token_values(
    answer: str, servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    token = fresh_token()
    service.respond("/tokens/validate", BROKEN_ANSWERS[answer])

    assert (
        servers["current"].http.get(f"/studies/{target.study_id}?token={token}").status_code == 403
    )

    log = servers["current"].log_text()
    assert f"AuthEmulator: denied /studies/{target.study_id}" in log
    assert token not in log


def test_slow_validations_do_not_serialise_orthanc(
    servers: dict[str, OrthancServer], service: RecordingService, target: Target
) -> None:
    delay = 0.4
    service.respond(
        "/tokens/validate", Reply.json({"granted": True, "validity": 0}, delay_seconds=delay)
    )
    http = servers["current"].http

    def fetch(_: int) -> int:
        return http.get(f"/studies/{target.study_id}", headers=bearer(fresh_token())).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(fetch, range(6)))
    elapsed = time.monotonic() - started

    assert statuses == [200] * 6
    assert elapsed < 3 * delay  # serialised, six calls would take 6 * delay


def test_legacy_mode_without_web_service_prevents_startup(
    orthanc_factory: OrthancFactory,
) -> None:
    with pytest.raises(OrthancStartupError, match="WebService is required in legacy mode"):
        orthanc_factory("emulator-misconfigured", EmulatorConfig(mode="legacy"))


# --------------------------------------------------------------------------- /auth/tokens/*


def test_creation_converts_the_oe2_body(
    admin: OrthancServer, service: RecordingService, target: Target
) -> None:
    service.respond(
        "/tokens/stone-viewer-publication",
        Reply.json({"request": {}, "token": "minted", "url": "http://localhost/share?token=x"}),
    )

    response = admin.http.put(
        "/auth/tokens/stone-viewer-publication",
        json={
            "ID": "share-1",
            "Type": "stone-viewer-publication",
            "Resources": [
                {"DicomUid": target.study_uid, "OrthancId": target.study_id, "Level": "study"}
            ],
            "ExpirationDate": "2031-02-03T04:05:06.789Z",
            "ValidityDuration": 3600,
        },
    )

    assert response.status_code == 200
    assert response.json() == {"Token": "minted", "Url": "http://localhost/share?token=x"}
    [call] = service.requests
    assert (call.method, call.path) == ("PUT", "/tokens/stone-viewer-publication")
    assert call.json == {
        "id": "share-1",
        "resources": [
            {"dicom-uid": target.study_uid, "orthanc-id": target.study_id, "level": "study"}
        ],
        "type": "stone-viewer-publication",
        "expiration-date": "2031-02-03T04:05:06.789Z",
        "validity-duration": 3600,
        "server-id": "admin-server-id",
    }
    assert call.header_values("Authorization") == [BASIC]
    assert call.header("Expect") == ""


@pytest.mark.parametrize("service_url", [None, ""])
def test_creation_omits_empty_fields_and_nulls_an_empty_url(
    service_url: str | None, admin: OrthancServer, service: RecordingService, target: Target
) -> None:
    service.respond(
        "/tokens/viewer-instant-link", Reply.json({"token": "minted", "url": service_url})
    )

    response = admin.http.put(
        "/auth/tokens/viewer-instant-link",
        json={
            "Id": "lost-as-upstream",  # OE2's spelling; the plugin reads "ID"
            "Resources": [{"DicomUid": target.study_uid, "OrthancId": "", "Level": "study"}],
            "ValidityDuration": 0,
        },
    )

    assert response.status_code == 200
    assert response.json() == {"Token": "minted", "Url": None}
    [call] = service.requests
    assert call.json == {
        "resources": [{"dicom-uid": target.study_uid, "level": "study"}],
        "type": "viewer-instant-link",
        "server-id": "admin-server-id",
    }


@pytest.mark.parametrize(
    "answer",
    [
        Reply.json({"token": "minted", "url": None}, status=500),
        Reply.json({"url": None}),
        Reply.json({"token": "minted"}, delay_seconds=TIMEOUT_SECONDS + 0.5),
    ],
    ids=["status-500", "no-token", "timeout"],
)
def test_creation_failure_is_a_502(
    answer: Reply, admin: OrthancServer, service: RecordingService
) -> None:
    service.respond("/tokens/stone-viewer-publication", answer)

    response = admin.http.put("/auth/tokens/stone-viewer-publication", json={"Resources": []})

    assert response.status_code == 502
    assert response.json() == {"Error": "token service failure"}


def test_token_routes_reject_bad_bodies_and_methods(admin: OrthancServer) -> None:
    assert admin.http.put("/auth/tokens/viewer-instant-link", content=b"{").status_code == 400
    bad_duration = {"Resources": [], "ValidityDuration": -5}
    assert admin.http.put("/auth/tokens/x", json=bad_duration).status_code == 400
    assert admin.http.post("/auth/tokens/viewer-instant-link", json={}).status_code == 405
    assert admin.http.put("/auth/tokens/decode", json={}).status_code == 405


def test_admin_orthanc_has_no_filter(admin: OrthancServer, service: RecordingService) -> None:
    assert admin.http.get("/studies").status_code == 200
    assert service.requests == []


def test_decode_passes_the_share_filter_and_converts_the_answer(
    servers: dict[str, OrthancServer],
    service: RecordingService,
    target: Target,
    other_target: Target,
) -> None:
    service.respond(
        "/tokens/decode",
        Reply.json(
            {
                "token-type": "stone-viewer-publication",
                "error-code": None,
                "redirect-url": "http://localhost/stone-webviewer/index.html?study=x",
                "resources": [
                    {"dicom-uid": target.study_uid, "orthanc-id": target.study_id},
                    {"dicom-uid": other_target.study_uid, "orthanc-id": other_target.study_id},
                    {"dicom-uid": target.study_uid, "orthanc-id": None, "level": "study"},
                ],
            }
        ),
    )

    response = servers["current"].http.post(
        "/auth/tokens/decode", json={"TokenKey": "token", "TokenValue": "xyz"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "RedirectUrl": "http://localhost/stone-webviewer/index.html?study=x",
        "TokenType": "stone-viewer-publication",
        "ResourcesDicomIds": sorted([target.study_uid, other_target.study_uid]),
        "ResourcesOrthancIds": sorted([target.study_id, other_target.study_id]),
    }
    [call] = service.requests  # no validation call: decode is open to everyone
    assert (call.method, call.path) == ("POST", "/tokens/decode")
    assert call.json == {"token-key": "token", "token-value": "xyz"}
    assert call.header_values("Authorization") == [BASIC]


def test_decode_reports_errors_and_service_failures(
    servers: dict[str, OrthancServer], service: RecordingService
) -> None:
    http = servers["current"].http
    body = {"TokenKey": "token", "TokenValue": "xyz"}
    expired = {"token-type": "viewer-instant-link", "error-code": "expired", "resources": []}
    service.respond("/tokens/decode", Reply.json(expired))

    assert http.post("/auth/tokens/decode", json=body).json() == {
        "ErrorCode": "expired",
        "TokenType": "viewer-instant-link",
        "ResourcesDicomIds": [],
        "ResourcesOrthancIds": [],
    }

    service.respond("/tokens/decode", Reply.json({}, status=500))
    assert http.post("/auth/tokens/decode", json=body).status_code == 502


def test_token_creation_is_not_open_on_a_share_orthanc(
    servers: dict[str, OrthancServer], service: RecordingService
) -> None:
    response = servers["current"].http.put(
        "/auth/tokens/stone-viewer-publication", headers={"token": "xyz"}, json={"Resources": []}
    )

    assert response.status_code == 403
    assert service.requests == []


# --------------------------------------------------------------------------- fixtures


def test_seeded_data_is_served_with_the_recorded_ids(
    orthanc_factory: OrthancFactory, orthanc_seed: SeededStorage, generated_data: GeneratedData
) -> None:
    plain = orthanc_factory("plain")  # no emulator
    ids = orthanc_seed.ids

    assert sorted(plain.http.get("/studies").json()) == sorted(ids.studies.values())
    assert len(plain.http.get("/instances").json()) == generated_data.instance_count
    jane = generated_data.patients[0]
    found = plain.http.post(
        "/tools/find", json={"Level": "Study", "Query": {"PatientName": jane.name}}
    ).json()
    assert sorted(found) == sorted(ids.study(study) for study in generated_data.studies_of(jane))
    study = generated_data.studies[0]
    tags = plain.http.get(f"/studies/{ids.study(study)}").json()["MainDicomTags"]
    assert tags["AccessionNumber"] == study.accession_number
    assert tags["InstitutionName"] == study.institution_name
    preview = plain.http.get(
        f"/instances/{ids.instances[study.series[0].instances[0].sop_instance_uid]}/preview"
    )
    assert preview.headers["content-type"] == "image/png"


def test_recording_service_answers_404_on_unknown_paths(service: RecordingService) -> None:
    with httpx.Client(base_url=service.url, trust_env=False) as client:
        assert client.post("/nowhere", json={}).status_code == 404
    [call] = service.requests
    assert isinstance(call, RecordedRequest)
    assert call.path == "/nowhere"
