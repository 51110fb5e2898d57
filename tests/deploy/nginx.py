"""Running Debian's nginx on the stack's templates, the way the official image would.

The official image renders /etc/nginx/templates/*.template into /etc/nginx/conf.d/ and
its /etc/nginx/nginx.conf includes conf.d/*.conf inside `http {}`.  Here the same
layout lives in a throw-away prefix: PREFIX/nginx.conf (below, modelled on the image's
main file, including its own access log in the "main" format) and PREFIX/conf.d/.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.compose import REPO
from tests.deploy.envsubst import render

__all__ = [
    "NGINX",
    "TEMPLATES",
    "Nginx",
    "free_port",
    "prepare",
    "read_log_when",
    "running_nginx",
    "check_config",
]

NGINX = "/usr/sbin/nginx"
TEMPLATES = REPO / "docker" / "nginx" / "templates"

# The parts of the official image's nginx.conf that matter here, with paths moved into
# the prefix.  Its http-level access log (format "main", which contains $request and
# so the query string) is kept on purpose: our server must replace it.
_MAIN_CONF = """\
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;

events {{
    worker_connections 256;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log {prefix}/image-default-access.log main;

    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    sendfile on;
    keepalive_timeout 65;

    include conf.d/*.conf;
}}
"""


@dataclass(frozen=True)
class Nginx:
    """A prepared prefix; the rendered server listens on `port` and logs to `access_log`."""

    prefix: Path
    port: int
    access_log: Path

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def stderr_log(self) -> Path:
        """nginx's standard error, where the server's error_log writes."""
        return self.prefix / "stderr.log"

    @property
    def image_default_access_log(self) -> Path:
        return self.prefix / "image-default-access.log"

    def command(self, *extra: str) -> list[str]:
        # -e: the error log used before the configuration is read (default /var/log/nginx).
        error_log = str(self.prefix / "error.log")
        return [NGINX, "-p", f"{self.prefix}/", "-c", str(self.conf), "-e", error_log, *extra]


def read_log_when(path: Path, *expected: str, timeout: float = 10.0) -> str:
    """The log once every `expected` substring is in it.

    nginx writes the access-log line after the response is sent, so a client can read
    the log before its own request's line is there.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if all(item in text for item in expected) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(prefix: Path, variables: Mapping[str, str]) -> Nginx:
    """Render the templates with `variables` (the container's environment) into `prefix`."""
    conf_d = prefix / "conf.d"
    conf_d.mkdir(parents=True)
    (prefix / "tmp").mkdir()
    for template in sorted(TEMPLATES.glob("*.template")):
        target = conf_d / template.name.removesuffix(".template")
        target.write_text(render(template.read_text(encoding="utf-8"), variables))
    (prefix / "nginx.conf").write_text(_MAIN_CONF.format(prefix=prefix))
    return Nginx(prefix, int(variables["NGINX_PORT"]), Path(variables["NGINX_ACCESS_LOG"]))


def check_config(nginx: Nginx) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the prepared prefix."""
    return subprocess.run(nginx.command("-t"), capture_output=True, text=True, timeout=30)


@contextmanager
def running_nginx(nginx: Nginx) -> Iterator[Nginx]:
    """Run nginx in the foreground until the block ends."""
    stderr = nginx.stderr_log.open("w")
    process = subprocess.Popen(
        nginx.command("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=stderr
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {nginx.stderr_log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", nginx.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield nginx
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.close()
