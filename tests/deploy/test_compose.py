"""docker-compose.yml: valid, pinned, healthy-before-use, closed to the outside."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.compose import (
    COMPOSE_FILE,
    REPO,
    Compose,
    InterpolationError,
    interpolate,
    load_compose,
    references,
)

PUBLIC_URL = "https://share.example.org"


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def validate_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the Compose Specification schema it vendors."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    result = validate_compose_spec(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    # Guards the test above against a validator that accepts anything.
    broken = tmp_path / "compose.yml"
    broken.write_text(
        "services:\n  web:\n    image: nginx:1.28.0\n"
        "    depends_on:\n      db:\n        condition: when_it_feels_like_it\n"
        "    restart: sometimes\n"
    )
    result = validate_compose_spec(broken)
    assert result.returncode != 0
    assert "condition" in result.stdout + result.stderr


def _image_reference(raw: str) -> str:
    """The image a fresh deployment uses: defaults of `${VAR:-default}` applied."""
    return interpolate(raw, {})


def test_every_image_is_pinned_to_a_version(compose: Compose) -> None:
    project_version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for service in compose.services.values():
        image = _image_reference(str(service.spec["image"]))
        name, _, tag = image.rpartition(":")
        assert name and tag, f"{service.name}: {image} has no tag"
        assert tag != "latest", f"{service.name}: {image}"
        if name == "orthanc-share":
            # Our own image is tagged with the project's version, built from this tree.
            assert tag == project_version, f"{service.name}: {image} vs {project_version}"
            assert service.spec["build"]["dockerfile"] == "docker/Dockerfile"
        else:
            # Third-party images: an exact release, never a moving "16" or "1.28" tag.
            # PostgreSQL numbers its releases major.minor since version 10.
            release = r"\d+\.\d+" if name == "postgres" else r"\d+\.\d+\.\d+"
            assert re.fullmatch(release + r"(-[a-z0-9]+)?", tag), f"{service.name}: {image}"


def test_every_service_has_a_healthcheck(compose: Compose) -> None:
    for service in compose.services.values():
        check = service.spec.get("healthcheck")
        assert check, f"{service.name} has no healthcheck"
        assert not check.get("disable"), service.name
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), service.name
        assert test[0] != "NONE", service.name


def test_dependants_wait_for_healthy_dependencies(compose: Compose) -> None:
    services = compose.services
    for service in services.values():
        for name, spec in service.depends_on().items():
            assert name in services, f"{service.name} depends on unknown {name}"
            assert spec.get("condition") == "service_healthy", f"{service.name} -> {name}"
            assert services[name].spec.get("healthcheck"), name
            # A service that always runs must not need one that only runs in a profile.
            if not service.profiles:
                assert not services[name].profiles, f"{service.name} -> {name} (profile)"


def test_profiles_keep_optional_parts_off_by_default(compose: Compose) -> None:
    profiles = {s.name: set(s.profiles) for s in compose.services.values()}
    assert profiles["anonymizer"] == {"anonymized"}
    assert profiles["orthanc-anon-share"] == {"anonymized"}
    for name in ("meddream-viewer", "meddream-token-service", "orthanc-meddream"):
        assert profiles[name] == {"meddream"}
    default = {name for name, p in profiles.items() if not p}
    assert default == {
        "nginx",
        "token-service",
        "share-landing",
        "orthanc-admin",
        "orthanc-share",
        "postgres",
    }


def test_nginx_is_the_only_published_entry_point(compose: Compose) -> None:
    published = {s.name for s in compose.services.values() if s.spec.get("ports")}
    assert published == {"nginx"}
    assert compose.service("nginx").networks() == ["edge"]


def test_token_service_is_reachable_only_on_the_internal_network(compose: Compose) -> None:
    token_service = compose.service("token-service")
    assert token_service.networks() == ["backend"]
    assert "ports" not in token_service.spec
    assert compose.doc["networks"]["backend"]["internal"] is True
    assert "backend" not in compose.service("nginx").networks()


def test_anonymized_orthanc_is_reachable_only_through_the_anonymizer(compose: Compose) -> None:
    nginx = compose.service("nginx")
    orthanc = compose.service("orthanc-anon-share")
    assert "ports" not in orthanc.spec
    assert orthanc.networks() == ["backend"]
    assert not set(nginx.networks()) & set(orthanc.networks())
    for value in nginx.environment().values():
        assert "orthanc-anon-share" not in str(value)
    # The anonymizer bridges the two networks: nginx reaches it, it reaches the Orthanc.
    anonymizer = compose.service("anonymizer")
    assert set(anonymizer.networks()) == {"edge", "backend"}
    assert nginx.environment()["UPSTREAM_ANONYMIZER"] == "anonymizer:8000"


def test_anonymizer_spools_archives_on_a_volume_not_in_memory(compose: Compose) -> None:
    anonymizer = compose.service("anonymizer")
    assert anonymizer.spec["read_only"] is True
    assert anonymizer.spec["tmpfs"] == []
    assert "anonymizer-tmp:/tmp" in anonymizer.spec["volumes"]
    # The other services of our image keep their small in-memory /tmp.
    assert compose.service("token-service").spec["tmpfs"] == ["/tmp"]


def test_data_lives_in_declared_named_volumes(compose: Compose) -> None:
    declared = set(compose.doc.get("volumes", {}))
    used = {v for s in compose.services.values() for v in s.named_volumes()}
    assert used <= declared
    assert "postgres-data:/var/lib/postgresql/data" in compose.service("postgres").spec["volumes"]


def test_missing_public_url_stops_compose_before_anything_starts(compose: Compose) -> None:
    value = compose.service("token-service").environment()["PUBLIC_ORTHANC_ROOT"]
    assert value is not None
    with pytest.raises(InterpolationError, match="PUBLIC_URL: set PUBLIC_URL in .env"):
        interpolate(value, {})


def test_public_roots_match_the_nginx_routes(compose: Compose) -> None:
    for name in ("token-service", "share-landing"):
        environment = compose.service(name).environment()
        final = {
            key: interpolate(value, {"PUBLIC_URL": PUBLIC_URL})
            for key, value in environment.items()
            if value is not None
        }
        assert final["PUBLIC_ORTHANC_ROOT"] == f"{PUBLIC_URL}/shares/"
        assert final["PUBLIC_LANDING_ROOT"] == f"{PUBLIC_URL}/welcome/"
        # Pass-through from .env: what docs/deployment.md says to set with the profile.
        assert environment["PUBLIC_ANONYMIZED_ORTHANC_ROOT"] is None
    templates = (REPO / "docker/nginx/templates/orthanc-share-locations.inc.template").read_text()
    assert "location /shares/ {" in templates
    assert "location /welcome/ {" in templates
    assert "location /anon-shares/ {" in templates
    doc = (REPO / "docs" / "deployment.md").read_text()
    assert "PUBLIC_ANONYMIZED_ORTHANC_ROOT=https://share.example.org/anon-shares/" in doc


def test_server_identifiers_are_the_ones_the_orthancs_send(compose: Compose) -> None:
    # The token service compares the plugin's WebServiceIdentifier with these settings:
    # both sides are filled from the same variable and default.
    token_service = compose.service("token-service").environment()
    share = compose.service("orthanc-share").environment()
    anon = compose.service("orthanc-anon-share").environment()
    key = "ORTHANC__AUTHORIZATION__WEB_SERVICE_IDENTIFIER"
    assert token_service["SERVER_IDENTIFIER"] == share[key]
    assert token_service["ANONYMIZED_SERVER_IDENTIFIER"] == anon[key]
    assert interpolate(str(share[key]), {}) != interpolate(str(anon[key]), {})


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(k) + _strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def test_every_dollar_sign_is_a_valid_interpolation(compose: Compose) -> None:
    # A stray `$` is silently eaten by compose; literal dollars must be written `$$`.
    env = {name: "x" for s in _strings(compose.doc) for name in references(s)}
    for text in _strings(compose.doc):
        interpolate(text, env)
        leftover = re.sub(r"\$\$|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", "", text)
        assert "$" not in leftover, text
