"""The `orthanc-share` command: run the services, generate a secret key."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

import uvicorn

from shared.logs import configure_logging

__all__ = ["main"]

# service name -> (ASGI app, built at startup by LazyApp; default port)
SERVICES = {
    "token-service": ("token_service.app:app", 8000),
    "share-landing": ("share_landing.app:app", 8001),
    "anonymizer": ("anonymizer.app:app", 8002),
}
# The anonymizer needs an anonymized-share Orthanc and its key: run it when named.
DEFAULT_SERVICES = ("token-service", "share-landing")

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "orthanc-share"


def gen_secret() -> str:
    """A new random SECRET_KEY (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _embedded_defaults(data_dir: Path, host: str) -> list[str]:
    """Fill in what a first run needs and was not configured; return what was filled in."""
    filled = []
    if not os.environ.get("SECRET_KEY") and not Path("/run/secrets/SECRET_KEY").is_file():
        key_file = data_dir / "secret_key"
        if not key_file.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(gen_secret() + "\n")
            filled.append(f"SECRET_KEY: generated and stored in {key_file}")
        else:
            filled.append(f"SECRET_KEY: read from {key_file}")
        os.environ["SECRET_KEY"] = key_file.read_text().strip()
    public = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    defaults = {
        "DATABASE_URL": f"sqlite:///{data_dir / 'orthanc-share.sqlite3'}",
        "PUBLIC_ORTHANC_ROOT": f"http://{public}:8042/",
        "PUBLIC_LANDING_ROOT": f"http://{public}:{SERVICES['share-landing'][1]}/share-landing/",
    }
    for name, value in defaults.items():
        if not os.environ.get(name):
            os.environ[name] = value
            filled.append(f"{name}={value}")
    return filled


async def _serve(names: list[str], host: str, port: int | None, log_level: str) -> None:
    servers = []
    for name in names:
        factory, default_port = SERVICES[name]
        config = uvicorn.Config(
            factory,
            host=host,
            port=port or default_port,
            log_config=None,
            log_level=log_level.lower(),
            # The asyncio loop: uvloop showed a long p99 tail under saturation.
            loop="asyncio",
            http="httptools",
            server_header=False,
            proxy_headers=True,
        )
        servers.append(uvicorn.Server(config))
    await asyncio.gather(*(server.serve() for server in servers))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `orthanc-share` console command."""
    parser = argparse.ArgumentParser(prog="orthanc-share", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run services (the token service and the landing by default)"
    )
    serve.add_argument("services", nargs="*", choices=[*SERVICES, []], metavar="SERVICE")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, help="port, when running one service")
    serve.add_argument(
        "--embedded-defaults",
        action="store_true",
        help="generate and keep a SECRET_KEY, use SQLite and local URLs where unset",
    )
    serve.add_argument("--data-dir", type=Path, default=None)
    commands.add_parser("gen-secret", help="print a new random SECRET_KEY")
    args = parser.parse_args(argv)

    if args.command == "gen-secret":
        print(gen_secret())
        return 0
    names = args.services or list(DEFAULT_SERVICES)
    if args.port is not None and len(names) != 1:
        parser.error("--port needs exactly one SERVICE")
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    configure_logging(log_level)
    if args.embedded_defaults:
        data_dir = args.data_dir or Path(os.environ.get("ORTHANC_SHARE_DATA_DIR", DEFAULT_DATA_DIR))
        for line in _embedded_defaults(data_dir, args.host):
            print(f"orthanc-share: {line}", file=sys.stderr)
    try:
        asyncio.run(_serve(names, args.host, args.port, log_level))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
