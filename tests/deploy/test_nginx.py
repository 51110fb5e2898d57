"""The nginx edge: templates, `nginx -t`, and routing through a real nginx on loopback.

The routing tests run Debian's nginx on the rendered templates in front of stand-in
upstreams (loopback HTTP servers recording what reaches them), so they prove what nginx
itself does: prefixes, header hygiene, large tokens, closed routes, the access log.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.compose import Compose, load_compose
from tests.deploy.envsubst import render
from tests.deploy.nginx import (
    TEMPLATES,
    Nginx,
    check_config,
    free_port,
    prepare,
    read_log_when,
    running_nginx,
)
from tests.deploy.upstreams import Answer, Received, RecordingUpstream, running_upstream

# A share of many studies makes a long token: this one is far beyond nginx's default
# 8 KiB header buffers, in the request line, in a request header and in the landing's
# Location response header.
BIG_TOKEN = "eyJhbGciOiJIUzI1NiJ9." + "x" * 20_000 + ".c2lnbmF0dXJl"
VIEWER = "http://localhost/shares/stone-webviewer/index.html?study=1.2.3&token="
UPSTREAMS = {
    "UPSTREAM_SHARE_LANDING": "landing",
    "UPSTREAM_SHARE_ORTHANC": "share-orthanc",
    "UPSTREAM_ANONYMIZER": "anonymizer",
    "UPSTREAM_ADMIN_ORTHANC": "admin-orthanc",
    "UPSTREAM_MEDDREAM_VIEWER": "meddream",
}
SPOOFED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Real-IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9;proto=https",
    "X-Forwarded-User": "admin",
    "X-Auth-Request-User": "admin",
    "X-Remote-User": "admin",
    "Remote-User": "admin",
    "X-Original-URL": "/admin/",
}


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def nginx_environment(compose: Compose) -> dict[str, str]:
    environment = compose.service("nginx").environment()
    return {name: str(value) for name, value in environment.items()}


def template_variables() -> set[str]:
    """Upper-case variables the templates refer to (nginx's own are lower-case)."""
    names = set()
    for template in TEMPLATES.glob("*.template"):
        names |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", template.read_text()))
    return names


def test_templates_use_exactly_the_variables_compose_sets(compose: Compose) -> None:
    assert template_variables() == set(nginx_environment(compose))


def test_renderer_matches_gnu_envsubst(compose: Compose) -> None:
    # Our renderer is what the tests below rely on; it must agree with the real tool the
    # image runs (gettext-base's envsubst, restricted to the defined variables).
    envsubst = shutil.which("envsubst")
    assert envsubst, "envsubst missing: install the Debian package gettext-base"
    variables = nginx_environment(compose)
    shell_format = " ".join(f"${{{name}}}" for name in sorted(variables))
    for template in TEMPLATES.glob("*.template"):
        text = template.read_text()
        expected = subprocess.run(
            [envsubst, shell_format],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **variables},
            timeout=30,
        ).stdout
        assert render(text, variables) == expected, template.name


def log_formats() -> dict[str, str]:
    text = (TEMPLATES / "default.conf.template").read_text()
    formats = {}
    for match in re.finditer(r"log_format\s+(\w+)((?:\s+'[^']*')+)\s*;", text):
        formats[match.group(1)] = "".join(re.findall(r"'([^']*)'", match.group(2)))
    return formats


def test_access_log_format_never_contains_query_strings_or_credentials() -> None:
    formats = log_formats()
    assert set(formats) == {"orthanc_share"}
    line = formats["orthanc_share"]
    for variable in (
        "$request_uri",
        "$args",
        "$arg_",
        "$query_string",
        "$is_args",
        "$request ",
        '$request"',
        "$request_body",
        "$http_referer",
        "$http_authorization",
        "$http_token",
        "$http_cookie",
        "$remote_user",
    ):
        assert variable not in line, variable
    server = (TEMPLATES / "default.conf.template").read_text()
    assert re.search(r"access_log \$\{NGINX_ACCESS_LOG\} orthanc_share;", server)


def prepare_with(prefix: Path, compose: Compose, overrides: Mapping[str, str]) -> Nginx:
    variables = nginx_environment(compose)
    variables.update(NGINX_PORT=str(free_port()), NGINX_ACCESS_LOG=str(prefix / "access.log"))
    variables.update(overrides)
    return prepare(prefix, variables)


@pytest.mark.e2e
def test_nginx_accepts_the_configuration_compose_renders(compose: Compose, tmp_path: Path) -> None:
    # The upstream names (orthanc-share, anonymizer, ...) do not resolve here: passing
    # shows nginx starts without resolving them, as it must when a profile is off.
    nginx = prepare_with(tmp_path / "nginx", compose, {})
    result = check_config(nginx)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# ---- routing through a running nginx ------------------------------------------------


def landing(received: Received) -> Answer:
    token = received.query.removeprefix("token=")
    return Answer(status=307, headers={"Location": VIEWER + token}, body=b"")


@dataclass(frozen=True)
class Edge:
    nginx: Nginx
    upstreams: dict[str, RecordingUpstream]

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=30)
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def received(self, upstream: str) -> list[Received]:
        return self.upstreams[upstream].received


@pytest.fixture(scope="module")
def edge(compose: Compose, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with ExitStack() as stack:
        upstreams = {
            name: stack.enter_context(
                running_upstream(name, landing if name == "landing" else None)
            )
            for name in UPSTREAMS.values()
        }
        addresses = {variable: upstreams[name].address for variable, name in UPSTREAMS.items()}
        nginx = prepare_with(tmp_path_factory.mktemp("edge"), compose, addresses)
        stack.enter_context(running_nginx(nginx))
        yield Edge(nginx, upstreams)


def last(edge: Edge, upstream: str) -> Received:
    received = edge.received(upstream)
    assert received, f"nothing reached {upstream}"
    return received[-1]


@pytest.mark.e2e
def test_share_link_goes_through_welcome_to_the_landing(edge: Edge) -> None:
    response = edge.request(
        "GET",
        f"/welcome/?token={BIG_TOKEN}",
        {**SPOOFED, "Authorization": "Basic YWRtaW46c2VjcmV0"},
    )

    assert response.status == 307
    assert response.getheader("Location") == VIEWER + BIG_TOKEN
    seen = last(edge, "landing")
    assert seen.method == "GET"
    assert seen.path == "/share-landing/"
    assert seen.query == f"token={BIG_TOKEN}"


@pytest.mark.e2e
def test_share_link_without_the_trailing_slash_is_redirected_keeping_its_token(edge: Edge) -> None:
    response = edge.request("GET", "/welcome?token=abc")
    assert response.status == 301
    # Relative, so it keeps the scheme and host the browser used (TLS terminators).
    assert response.getheader("Location") == "/welcome/?token=abc"


@pytest.mark.e2e
def test_client_supplied_forwarding_and_identity_headers_are_replaced(edge: Edge) -> None:
    edge.request("GET", "/welcome/?token=abc", {**SPOOFED, "Authorization": "Basic eDp5"})

    headers = last(edge, "landing").headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "127.0.0.1"
    for name in SPOOFED:
        if not name.lower().startswith(
            ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip")
        ):
            assert name.lower() not in headers, name
    # The landing has no use for credentials; it never sees any.
    assert "authorization" not in headers


@pytest.mark.e2e
def test_viewer_requests_reach_the_share_orthanc_with_their_token(edge: Edge) -> None:
    response = edge.request("GET", VIEWER.removeprefix("http://localhost") + BIG_TOKEN)
    assert response.status == 200
    seen = last(edge, "share-orthanc")
    assert seen.path == "/stone-webviewer/index.html"
    assert seen.query == f"study=1.2.3&token={BIG_TOKEN}"

    response = edge.request(
        "GET",
        "/shares/dicom-web/studies/1.2.3/series",
        {"Authorization": f"Bearer {BIG_TOKEN}", "token": BIG_TOKEN, **SPOOFED},
    )
    assert response.status == 200
    seen = last(edge, "share-orthanc")
    assert seen.path == "/dicom-web/studies/1.2.3/series"
    assert seen.headers["authorization"] == f"Bearer {BIG_TOKEN}"
    assert seen.headers["token"] == BIG_TOKEN
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert "x-forwarded-user" not in seen.headers


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("PUT", "/shares/studies/0195f13e/labels/x"),
        ("DELETE", "/shares/studies/0195f13e"),
        ("PATCH", "/shares/studies/0195f13e"),
        ("PUT", "/shares/auth/tokens/stone-viewer-publication"),
        ("POST", "/shares/auth/tokens/viewer-instant-link"),
        ("GET", "/shares/auth/tokens/decode"),
        ("PUT", "/anon-shares/auth/tokens/osimis-viewer-publication"),
        ("POST", "/anon-shares/auth/tokens/decode"),
        # The anonymizer serves reads only: nothing else even reaches it.
        ("POST", "/anon-shares/tools/find"),
        ("PUT", "/anon-shares/studies/x"),
        ("DELETE", "/anon-shares/studies/x"),
        ("PATCH", "/anon-shares/studies/x"),
        ("OPTIONS", "/anon-shares/dicom-web/studies"),
        ("POST", "/welcome/?token=abc"),
    ],
)
def test_writes_and_share_creation_are_refused_at_the_edge(
    edge: Edge, method: str, target: str
) -> None:
    before = {name: len(u.received) for name, u in edge.upstreams.items()}
    response = edge.request(method, target, body=b"{}")
    assert response.status == 403
    assert {name: len(u.received) for name, u in edge.upstreams.items()} == before


@pytest.mark.e2e
def test_token_decode_for_the_landing_page_of_oe2_passes(edge: Edge) -> None:
    response = edge.request("POST", "/shares/auth/tokens/decode", body=b"{}")
    assert response.status == 200
    seen = last(edge, "share-orthanc")
    assert (seen.method, seen.path) == ("POST", "/auth/tokens/decode")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("PUT", "/token-service/shares"),
        ("PUT", "/tokens/stone-viewer-publication"),
        ("POST", "/tokens/validate"),
        ("POST", "/tokens/decode"),
        ("POST", "/user/get-profile"),
        ("GET", "/health"),
        ("GET", "/"),
    ],
)
def test_token_service_routes_are_not_reachable(edge: Edge, method: str, target: str) -> None:
    before = {name: len(u.received) for name, u in edge.upstreams.items()}
    assert edge.request(method, target, body=b"{}").status == 404
    assert {name: len(u.received) for name, u in edge.upstreams.items()} == before


@pytest.mark.e2e
def test_admin_ui_reaches_the_admin_orthanc_with_its_login(edge: Edge) -> None:
    response = edge.request("GET", "/admin/ui/app/", {"Authorization": "Basic YWRtaW46cHc="})
    assert response.status == 200
    seen = last(edge, "admin-orthanc")
    assert seen.path == "/ui/app/"
    assert seen.headers["authorization"] == "Basic YWRtaW46cHc="


@pytest.mark.e2e
def test_only_the_admin_orthanc_accepts_large_uploads(edge: Edge) -> None:
    dicom = b"\0" * (3 * 1024 * 1024)
    headers = {"Content-Type": "application/dicom"}
    assert edge.request("POST", "/admin/instances", headers, dicom).status == 200
    assert last(edge, "admin-orthanc").path == "/instances"
    assert edge.request("POST", "/shares/instances", headers, dicom).status == 413


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("target", "upstream", "path"),
    [
        (
            "/anon-shares/osimis-viewer/app/index.html",
            "anonymizer",
            "/osimis-viewer/app/index.html",
        ),
        ("/meddream/?study=1.2.3&token=abc", "meddream", "/"),
    ],
)
def test_optional_viewers_are_routed_under_their_prefix(
    edge: Edge, target: str, upstream: str, path: str
) -> None:
    assert edge.request("GET", target).status == 200
    assert last(edge, upstream).path == path


@pytest.mark.e2e
def test_anonymized_viewer_requests_reach_the_anonymizer_with_their_token(edge: Edge) -> None:
    response = edge.request(
        "GET",
        f"/anon-shares/stone-webviewer/index.html?study=2.25.1&token={BIG_TOKEN}",
        SPOOFED,
    )
    assert response.status == 200
    seen = last(edge, "anonymizer")
    assert seen.path == "/stone-webviewer/index.html"
    assert seen.query == f"study=2.25.1&token={BIG_TOKEN}"
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert "x-forwarded-user" not in seen.headers

    response = edge.request(
        "GET",
        "/anon-shares/dicom-web/studies/2.25.1/series",
        {"Authorization": f"Bearer {BIG_TOKEN}"},
    )
    assert response.status == 200
    seen = last(edge, "anonymizer")
    assert seen.path == "/dicom-web/studies/2.25.1/series"
    assert seen.headers["authorization"] == f"Bearer {BIG_TOKEN}"


@pytest.mark.e2e
def test_no_public_path_reaches_anything_but_the_listed_upstreams(compose: Compose) -> None:
    # The anonymized-share Orthanc has no upstream variable and no location: the
    # templates' only proxy_pass targets are the UPSTREAM_* of the nginx service.
    text = "".join(t.read_text() for t in TEMPLATES.glob("*.template"))
    text = re.sub(r"#[^\n]*", "", text)  # comments
    assert "anon-share" not in text.replace("/anon-shares", "")
    targets = set(re.findall(r"set \$orthanc_share_upstream \$\{(\w+)\};", text))
    assert targets == set(UPSTREAMS)
    assert set(re.findall(r"proxy_pass ([^;]+);", text)) == {"http://$orthanc_share_upstream"}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/welcome/?token=abc"),
        ("GET", "/shares/system"),
        ("GET", "/nope"),
        ("DELETE", "/shares/x"),
    ],
)
def test_security_headers_are_on_every_answer(edge: Edge, method: str, target: str) -> None:
    response = edge.request(method, target)
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert response.getheader("Content-Security-Policy") == "frame-ancestors 'self'"
    assert response.getheader("Server") == "nginx"


@pytest.mark.e2e
def test_health_endpoint_and_the_compose_healthcheck_command(compose: Compose, edge: Edge) -> None:
    assert edge.request("GET", "/nginx-health").status == 200
    test = compose.service("nginx").spec["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = str(test[3]).replace(
        "/dev/tcp/127.0.0.1/80 ", f"/dev/tcp/127.0.0.1/{edge.nginx.port} "
    )
    assert script != test[3]
    assert subprocess.run(["bash", "-c", script], timeout=30).returncode == 0


@pytest.mark.e2e
def test_logs_have_paths_but_never_tokens(edge: Edge) -> None:
    marker = "eyJsb2ctdGVzdCI6MX0.bG9nLXRlc3Q.c2lnbg"
    edge.request("GET", f"/welcome/?token={marker}", {"Referer": f"http://x/?token={marker}"})
    edge.request("GET", f"/shares/stone-webviewer/index.html?study=1&token={marker}")
    edge.request("GET", "/shares/dicom-web/studies/1/series", {"Authorization": f"Bearer {marker}"})

    expected = (
        '"GET /welcome/ HTTP/1.1" 307 ',
        '"GET /shares/stone-webviewer/index.html HTTP/1.1" 200 ',
        '"GET /shares/dicom-web/studies/1/series HTTP/1.1" 200 ',
    )
    log = read_log_when(edge.nginx.access_log, *expected)
    for line in expected:
        assert line in log
    everything = (
        log + (edge.nginx.prefix / "error.log").read_text() + edge.nginx.stderr_log.read_text()
    )
    assert marker not in everything
    assert BIG_TOKEN[:40] not in everything
    assert "token=" not in everything
    # The image's own http-level log (format "main", query strings included) must be
    # replaced by our server's for every request.
    assert edge.nginx.image_default_access_log.read_text() == ""


@pytest.mark.e2e
def test_https_example_is_a_working_server_block(compose: Compose, tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=share.example.org",
            "-keyout",
            str(tls / "privkey.pem"),
            "-out",
            str(tls / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    example = (TEMPLATES.parent / "https.conf.template.example").read_text()
    nginx = prepare_with(tmp_path / "nginx", compose, {})
    https = render(example, nginx_environment(compose) | {"NGINX_ACCESS_LOG": "/dev/null"})
    https = https.replace("listen 443 ssl;", f"listen {free_port()} ssl;")
    (nginx.prefix / "conf.d" / "https.conf").write_text(https.replace("/etc/nginx/tls/", f"{tls}/"))
    result = check_config(nginx)
    assert result.returncode == 0, result.stderr
