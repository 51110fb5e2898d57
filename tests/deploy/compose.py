"""Reading docker-compose.yml the way `docker compose` does, as far as the tests need.

There is no Docker engine on CI machines, so the file is checked statically: parsed
with a YAML loader (anchors and `<<` merge keys resolved), and values interpolated
with the Compose specification's `${VAR}` rules when a test needs the final value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = [
    "COMPOSE_FILE",
    "REPO",
    "InterpolationError",
    "Service",
    "interpolate",
    "load_compose",
    "references",
]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"


class InterpolationError(Exception):
    """A required variable is missing, or an interpolation is malformed."""


# `$$` is a literal dollar; `${...}` and `$NAME` are references.
_TOKEN = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.DOTALL)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Apply Compose interpolation: `${V}`, `${V:-d}`, `${V-d}`, `${V:?m}`, `${V?m}`, `${V:+r}`."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        if match.group(3):
            return env.get(match.group(3), "")
        braced = _BRACED.fullmatch(match.group(2))
        if braced is None:
            raise InterpolationError(f"invalid interpolation: {match.group(0)!r}")
        name, operator, argument = braced.groups()
        current = env.get(name)
        if operator is None:
            return current or ""
        if operator == ":-":
            return current or argument
        if operator == "-":
            return argument if current is None else current
        if operator in (":?", "?"):
            if current is None or (operator == ":?" and not current):
                raise InterpolationError(f"{name}: {argument}")
            return current
        if operator == ":+":
            return argument if current else ""
        return "" if current is None else argument  # "+"

    return _TOKEN.sub(substitute, value)


def references(value: str) -> set[str]:
    """Names of the variables a string refers to (`$$` excluded)."""
    names = set()
    for match in _TOKEN.finditer(value):
        if match.group(3):
            names.add(match.group(3))
        elif match.group(2) is not None:
            braced = _BRACED.fullmatch(match.group(2))
            if braced is not None:
                names.add(braced.group(1))
    return names


@dataclass(frozen=True)
class Service:
    """One service of the compose file, with typed accessors for what tests inspect."""

    name: str
    spec: Mapping[str, Any]

    @property
    def profiles(self) -> list[str]:
        return [str(p) for p in self.spec.get("profiles", [])]

    def environment(self) -> dict[str, str | None]:
        """`environment:` in either syntax; None means "no value: passed through if set"."""
        raw = self.spec.get("environment", {})
        if isinstance(raw, Mapping):
            return {str(k): None if v is None else str(v) for k, v in raw.items()}
        result: dict[str, str | None] = {}
        for item in raw:
            name, sep, value = str(item).partition("=")
            result[name] = value if sep else None
        return result

    def secrets(self) -> dict[str, str]:
        """Secret source name -> file name under /run/secrets in the container."""
        result = {}
        for item in self.spec.get("secrets", []):
            if isinstance(item, Mapping):
                source = str(item["source"])
                result[source] = str(item.get("target", source))
            else:
                result[str(item)] = str(item)
        return result

    def bind_mounts(self) -> list[tuple[str, str]]:
        """(host path, container path) of the short-syntax volumes that are bind mounts."""
        mounts = []
        for item in self.spec.get("volumes", []):
            source, _, rest = str(item).partition(":")
            if source.startswith((".", "/")):
                mounts.append((source, rest.split(":")[0]))
        return mounts

    def named_volumes(self) -> list[str]:
        names = []
        for item in self.spec.get("volumes", []):
            source = str(item).partition(":")[0]
            if not source.startswith((".", "/")):
                names.append(source)
        return names

    def networks(self) -> list[str]:
        raw = self.spec.get("networks", [])
        return [str(n) for n in (raw.keys() if isinstance(raw, Mapping) else raw)]

    def depends_on(self) -> dict[str, Mapping[str, Any]]:
        raw = self.spec.get("depends_on", {})
        if isinstance(raw, Mapping):
            return {str(k): v for k, v in raw.items()}
        return {str(name): {} for name in raw}


@dataclass(frozen=True)
class Compose:
    """The parsed compose file."""

    doc: Mapping[str, Any]

    @property
    def services(self) -> dict[str, Service]:
        return {str(n): Service(str(n), s) for n, s in self.doc["services"].items()}

    def service(self, name: str) -> Service:
        return self.services[name]

    def secret_files(self) -> dict[str, str]:
        """Top-level secret name -> host file path."""
        return {str(n): str(s["file"]) for n, s in self.doc.get("secrets", {}).items()}


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, Mapping):
        raise TypeError(f"{path}: not a mapping")
    return Compose(doc)
