"""Real Orthanc processes for end-to-end tests (Debian's Orthanc 1.10.1, see orthanc-test-env.md).

Test data is loaded once per session into a *seed* storage by an Orthanc running without the
authorization emulator (so uploads need no bypass in the emulator), which is then stopped
cleanly. Every server gets its own copy of that storage, its own loopback port and one JSON
configuration listing its plugins one by one (never ``/etc/orthanc``). Restarting a server
keeps its port and storage, so URLs handed to other services stay valid.

Orthanc 1.10.1 has no bind-address option: it listens on all interfaces, and
``RemoteAccessAllowed: false`` makes it refuse every non-loopback client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

from .dicom_data import GeneratedData, OrthancIds, upload

__all__ = [
    "EMULATOR_SCRIPT",
    "EmulatorConfig",
    "OrthancFactory",
    "OrthancServer",
    "OrthancStartupError",
    "SeededStorage",
    "seed_storage",
]

ORTHANC_EXECUTABLE = Path("/usr/sbin/Orthanc")
PLUGINS_DIRECTORY = Path("/usr/share/orthanc/plugins")
PYTHON_PLUGIN = PLUGINS_DIRECTORY / "libOrthancPython.so"
DICOMWEB_PLUGIN = PLUGINS_DIRECTORY / "libOrthancDicomWeb.so"
EMULATOR_SCRIPT = Path(__file__).resolve().parent / "orthanc_plugin" / "auth_emulator.py"

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30.0
GRACEFUL_STOP_TIMEOUT_SECONDS = 30.0
STARTED_LOG_LINE = "Orthanc has started"
PORT_IN_USE_LOG_LINE = "already in use"
PORT_ATTEMPTS = 3


class OrthancStartupError(RuntimeError):
    """Orthanc exited or did not become ready; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The ``AuthEmulator`` section: the official ``Authorization`` keys plus a timeout.

    ``mode="legacy"`` needs ``web_service``; ``mode="current"`` takes ``root_url`` or the
    individual URLs (``web_service`` is then the legacy alias of ``validation_url``). With
    neither a validation URL nor a root URL, current mode installs no filter, like an admin
    Orthanc that only mints tokens.
    """

    mode: Literal["legacy", "current"]
    web_service: str | None = None
    root_url: str | None = None
    validation_url: str | None = None
    decoder_url: str | None = None
    creation_base_url: str | None = None
    username: str | None = None
    password: str | None = None
    server_id: str | None = None
    token_http_headers: tuple[str, ...] = ()
    token_get_arguments: tuple[str, ...] = ()
    standard_configurations: tuple[str, ...] = ()
    unchecked_resources: tuple[str, ...] = ()
    unchecked_folders: tuple[str, ...] = ()
    checked_level: str | None = "studies"
    timeout_seconds: float = 10.0

    def section(self) -> dict[str, object]:
        """The JSON section, omitting unset keys as an operator would."""
        optional: dict[str, str | None] = {
            "WebService": self.web_service,
            "WebServiceRootUrl": self.root_url,
            "WebServiceTokenValidationUrl": self.validation_url,
            "WebServiceTokenDecoderUrl": self.decoder_url,
            "WebServiceTokenCreationBaseUrl": self.creation_base_url,
            "WebServiceUsername": self.username,
            "WebServicePassword": self.password,
            "WebServiceIdentifier": self.server_id,
            "CheckedLevel": self.checked_level,
        }
        section: dict[str, object] = {
            key: value for key, value in optional.items() if value is not None
        }
        section["Mode"] = self.mode
        section["TokenHttpHeaders"] = list(self.token_http_headers)
        section["TokenGetArguments"] = list(self.token_get_arguments)
        section["StandardConfigurations"] = list(self.standard_configurations)
        section["UncheckedResources"] = list(self.unchecked_resources)
        section["UncheckedFolders"] = list(self.unchecked_folders)
        section["WebServiceTimeout"] = self.timeout_seconds
        return section


@dataclass(frozen=True, slots=True)
class SeededStorage:
    """An Orthanc storage+index directory holding ``data``, with the ids Orthanc gave it."""

    directory: Path
    data: GeneratedData
    ids: OrthancIds


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


class OrthancServer:
    """One Orthanc process, optionally running the authorization emulator.

    Use ``http`` (an httpx client on ``base_url``) to talk to it; every request goes through
    the emulator's filter when one is configured.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        emulator: EmulatorConfig | None = None,
        seed: SeededStorage | None = None,
        extra_config: Mapping[str, object] | None = None,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.emulator = emulator
        self.seed = seed
        self.extra_config: dict[str, object] = dict(extra_config or {})
        self.storage_directory = workdir / "storage"
        self.port = 0
        self._run = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        if seed is not None:
            shutil.copytree(seed.directory, self.storage_directory)
        else:
            self.storage_directory.mkdir()

    # ---------------------------------------------------------------- properties

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without trailing slash."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def http(self) -> httpx.Client:
        """A client bound to this server (not following redirects, ignoring proxies)."""
        if self._http is None:
            raise RuntimeError(f"Orthanc {self.name!r} is not running")
        return self._http

    @property
    def ids(self) -> OrthancIds:
        """Orthanc ids of the seeded data."""
        if self.seed is None:
            raise RuntimeError(f"Orthanc {self.name!r} was started without seeded data")
        return self.seed.ids

    @property
    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start Orthanc and wait until it serves HTTP; keeps the port across restarts."""
        if self._process is not None:
            raise RuntimeError(f"Orthanc {self.name!r} is already running")
        first_start = self.port == 0
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if first_start:
                self.port = _free_port()
            try:
                self._spawn_and_wait()
                break
            except OrthancStartupError as exc:
                # Another process may grab the free port between the probe and Orthanc.
                retry = first_start and PORT_IN_USE_LOG_LINE in str(exc)
                if not retry or attempt == PORT_ATTEMPTS:
                    raise
        self._http = httpx.Client(base_url=self.base_url, trust_env=False, timeout=30.0)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop Orthanc: SIGKILL by default (throw-away storage), SIGTERM if ``graceful``."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if graceful:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=GRACEFUL_STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
            else:
                process.kill()
        process.wait()

    def restart(self, emulator: EmulatorConfig | None = None) -> None:
        """Restart on the same port and storage, with ``emulator`` if given.

        ``None`` keeps the current configuration; to drop the emulator, set
        ``server.emulator = None`` first.
        """
        self.stop()
        if emulator is not None:
            self.emulator = emulator
        self.start()

    def __enter__(self) -> OrthancServer:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- logs

    def log_text(self, *, all_runs: bool = False) -> str:
        """Orthanc's log of the current run (or of every run), stderr included."""
        runs = range(1, self._run + 1) if all_runs else range(self._run, self._run + 1)
        parts: list[str] = []
        for run in runs:
            log_directory = self.workdir / f"logs-{run}"
            for path in sorted(log_directory.glob("Orthanc.log.*")) + [
                log_directory / "stdout-stderr.txt"
            ]:
                if path.is_file():
                    parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    # ---------------------------------------------------------------- internals

    def configuration(self) -> dict[str, object]:
        """The JSON configuration the next start will use."""
        plugins = [str(DICOMWEB_PLUGIN)]
        config: dict[str, object] = {
            "Name": f"orthanc-share-e2e-{self.name}",
            "StorageDirectory": str(self.storage_directory),
            "IndexDirectory": str(self.storage_directory),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,
            "HttpDescribeErrors": True,
            "SaveJobs": False,
            "Plugins": plugins,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        if self.emulator is not None:
            plugins.append(str(PYTHON_PLUGIN))
            config["PythonScript"] = str(EMULATOR_SCRIPT)
            config["PythonVerbose"] = False
            config["AuthEmulator"] = self.emulator.section()
        config.update(self.extra_config)
        return config

    def _spawn_and_wait(self) -> None:
        self._run += 1
        log_directory = self.workdir / f"logs-{self._run}"
        log_directory.mkdir()
        config_path = self.workdir / f"orthanc-{self._run}.json"
        config_path.write_text(json.dumps(self.configuration(), indent=2))
        # The embedded Python must not write __pycache__ next to the emulator in the repo.
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        with (log_directory / "stdout-stderr.txt").open("wb") as output:
            self._process = subprocess.Popen(
                [str(ORTHANC_EXECUTABLE), f"--logdir={log_directory}", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=environment,
            )
        try:
            self._wait_until_started()
        except BaseException:
            self.stop()
            raise

    def _wait_until_started(self) -> None:
        # Readiness comes from the log, not from a request: a request would go through the
        # filter and could reach the token service under test.
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process.wait()
                raise OrthancStartupError(
                    f"Orthanc {self.name!r} exited with status {self._process.returncode}:\n"
                    + self.log_text()[-4000:]
                )
            if STARTED_LOG_LINE in self.log_text() and _accepts_connections(self.port):
                return
            time.sleep(0.05)
        raise OrthancStartupError(
            f"Orthanc {self.name!r} not ready after {STARTUP_TIMEOUT_SECONDS} s:\n"
            + self.log_text()[-4000:]
        )


def seed_storage(directory: Path, data: GeneratedData) -> SeededStorage:
    """Load ``data`` into a fresh storage with a plain Orthanc, then stop it cleanly."""
    loader = OrthancServer("seed", directory / "loader")
    loader.start()
    try:
        ids = upload(loader.http, data)
    finally:
        # A clean shutdown, since every server starts from a copy of this storage.
        loader.stop(graceful=True)
    return SeededStorage(directory=loader.storage_directory, data=data, ids=ids)


class OrthancFactory:
    """Creates started servers under one directory and stops them all on ``close()``."""

    def __init__(self, directory: Path, seed: SeededStorage) -> None:
        self._directory = directory
        self.seed = seed
        self._servers: list[OrthancServer] = []

    def __call__(
        self,
        name: str,
        emulator: EmulatorConfig | None = None,
        *,
        seeded: bool = True,
        extra_config: Mapping[str, object] | None = None,
    ) -> OrthancServer:
        """Start a server named ``name`` on a fresh copy of the seed (if ``seeded``)."""
        workdir = self._directory / name
        suffix = 1
        while workdir.exists():  # the same name may be used by several test modules
            suffix += 1
            workdir = self._directory / f"{name}-{suffix}"
        server = OrthancServer(
            name,
            workdir,
            emulator=emulator,
            seed=self.seed if seeded else None,
            extra_config=extra_config,
        )
        self._servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        """Stop every server created by this factory."""
        for server in self._servers:
            server.stop()
        self._servers.clear()
