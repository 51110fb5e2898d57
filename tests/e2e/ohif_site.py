"""A real OHIF deployment for end-to-end tests: nginx serving OHIF and DICOMweb on one origin.

The viewer is the prebuilt OHIF v3 of `@ohif/app`, pinned (integrity hash included) by
`tests/e2e/ohif/package-lock.json` and installed by `scripts/install-ohif.sh`. That build
is made for the root of its origin (its pages load `/app.bundle….js`), so each site is an
nginx server on a loopback port of its own: OHIF's files, `tests/e2e/ohif/app-config.js`
in place of the package's demo configuration, any other path answered with `index.html`
(OHIF routes `/viewer` in the browser), and `/dicom-web/` proxied to the Orthanc or the
anonymizer the site reads, as a deployment's nginx does.

Each site logs its `/dicom-web/` requests alone, without query strings, and records only
whether an `Authorization: Bearer` header came with them, never its value.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.nginx import Nginx, running_nginx
from tests.servers import free_port

__all__ = ["APP_CONFIG", "LoggedRequest", "OhifSite", "install_ohif", "running_sites"]

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "install-ohif.sh"
APP_CONFIG = Path(__file__).resolve().parent / "ohif" / "app-config.js"

_MAIN = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;

events {{
    worker_connections 256;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    sendfile on;

    map $http_authorization $presented {{
        "~^Bearer [^ ]+$" bearer;
        "" none;
        default other;
    }}
    log_format dicomweb '$request_method $uri $status $presented';

{servers}
}}
"""

_SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        location = /app-config.js {{
            alias {app_config};
        }}
        location /dicom-web/ {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            access_log {access_log} dicomweb;
        }}
        location / {{
            root {dist};
            try_files $uri /index.html;
        }}
    }}
"""


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One `/dicom-web/` request as nginx logged it."""

    method: str
    path: str
    status: int
    presented: str  # "bearer", "none" or "other"


@dataclass(frozen=True, slots=True)
class OhifSite:
    """One OHIF origin reading DICOMweb from `upstream`."""

    name: str
    port: int
    upstream: str
    access_log: Path

    @property
    def root(self) -> str:
        """The public root of this OHIF (what PUBLIC_OHIF_ROOT names)."""
        return f"http://127.0.0.1:{self.port}/"

    def dicomweb_log(self) -> list[LoggedRequest]:
        """The `/dicom-web/` requests nginx has logged so far."""
        if not self.access_log.exists():
            return []
        logged = []
        for line in self.access_log.read_text().splitlines():
            method, path, status, presented = line.split(" ")
            logged.append(LoggedRequest(method, path, int(status), presented))
        return logged


def install_ohif() -> Path:
    """The directory of OHIF's built files, installed from the lock first if needed."""
    done = subprocess.run(
        [str(INSTALLER)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{INSTALLER.name} failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@contextmanager
def running_sites(
    prefix: Path, dist: Path, upstreams: Mapping[str, str]
) -> Iterator[dict[str, OhifSite]]:
    """One nginx serving an OHIF site per `name -> upstream base URL`, until the block ends."""
    (prefix / "tmp").mkdir(parents=True)
    sites = {
        name: OhifSite(name, free_port(), upstream.rstrip("/"), prefix / f"{name}-dicomweb.log")
        for name, upstream in upstreams.items()
    }
    servers = "\n".join(
        _SERVER.format(
            port=site.port,
            app_config=APP_CONFIG,
            upstream=site.upstream,
            access_log=site.access_log,
            dist=dist,
        )
        for site in sites.values()
    )
    # As root, nginx's workers would otherwise run as nobody, who cannot use the prefix.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(_MAIN.format(user=user, prefix=prefix, servers=servers))
    first = next(iter(sites.values()))
    with running_nginx(Nginx(prefix, first.port, first.access_log)):
        yield sites
