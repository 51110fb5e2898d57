"""Run our services as real uvicorn processes on loopback ports, as operators run them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ServiceProcess", "free_port", "start_service"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """A running `orthanc-share serve SERVICE` process and its log file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def suspend(self) -> None:
        """Freeze the process (it keeps its socket but answers nothing)."""
        self.process.send_signal(19)  # SIGSTOP

    def resume(self) -> None:
        """Let a frozen process run again."""
        self.process.send_signal(18)  # SIGCONT


def _command(name: str, port: int) -> list[str]:
    return [sys.executable, "-m", "shared.cli", "serve", name, "--port", str(port)]


def start_service(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    wait: bool = True,
) -> ServiceProcess:
    """Start one service with exactly `env` (plus PATH) and wait until /health answers."""
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}.log"
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(name, port), env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    service = ServiceProcess(name, port, process, log_path, dict(full_env))
    if wait:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {service.log()[-2000:]}")
            try:
                if httpx.get(f"{service.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                service.stop()
                raise RuntimeError(f"{name} did not start: {service.log()[-2000:]}")
            time.sleep(0.05)
    return service
