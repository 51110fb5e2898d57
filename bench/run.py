"""Load-test the token service and a bare ASGI app in the same run, and print the ratios.

Each server runs as one uvicorn process pinned to cpu 0 with the flags the `orthanc-share
serve` command uses; wrk (`../shared/bench/bench.sh`) is pinned to cpu 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.servers import free_port

SECRET = "bench-secret-key-of-at-least-thirty-two-bytes"
TARGETS = {
    "a": "valid repeated token: >= 50% of bare (8x the original)",
    "b": "invalid token: no slower than a",
    "c": "share creation: >= 3x the original (~770 req/s on the reference machine)",
}


def _uvicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", app, "--port", str(port), "--loop", "asyncio",
        "--http", "httptools", "--no-access-log", "--log-level", "warning", "--no-server-header",
    ]  # fmt: skip
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{app} did not start: {log.read_text()}")


def _bench(bench_sh: Path, url: str, scenarios: str, args: argparse.Namespace) -> dict[str, float]:
    command = [
        "bash", str(bench_sh), "-C", "1", "-c", args.conns, "-d", str(args.duration),
        "-w", str(args.warmup), "-s", scenarios, url, "auto",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    rates: dict[str, float] = {}
    for line in result.stdout.splitlines():
        print(line)
        scenario, conns, rate, *_ = line.split()
        rates[f"{scenario}@{conns}"] = float(rate)
    return rates


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    """Run the benchmark and print one line per ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench-sh", type=Path, default=Path("../shared/bench/bench.sh"))
    parser.add_argument("--conns", default="64")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    if not args.bench_sh.is_file():
        raise SystemExit(f"bench.sh not found at {args.bench_sh} (use --bench-sh)")

    env = {
        "PATH": os.environ.get("PATH", ""),
        "SECRET_KEY": SECRET,
        "PUBLIC_ORTHANC_ROOT": "http://127.0.0.1:8042/",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, service_port = free_port(), free_port()
        bare = _uvicorn("bench.bare:app", bare_port, env, Path(tmp) / "bare.log")
        try:
            print("# bare ASGI app (fixed JSON)")
            bare_rates = _bench(args.bench_sh, f"http://127.0.0.1:{bare_port}", "a", args)
        finally:
            bare.kill()
            bare.wait()
        service = _uvicorn("token_service.app:app", service_port, env, Path(tmp) / "service.log")
        try:
            print("# token service")
            rates = _bench(args.bench_sh, f"http://127.0.0.1:{service_port}", "a b c", args)
            first_rss = _rss_mb(service.pid)
            rates.update(_bench(args.bench_sh, f"http://127.0.0.1:{service_port}", "a", args))
            second_rss = _rss_mb(service.pid)
        finally:
            service.kill()
            service.wait()

    print("# ratios (same run)")
    for conns in args.conns.split():
        bare_rate = bare_rates.get(f"a@{conns}", 0.0)
        for scenario in "abc":
            rate = rates.get(f"{scenario}@{conns}", 0.0)
            ratio = rate / bare_rate if bare_rate else float("nan")
            print(
                f"{scenario}@{conns}: {rate:.0f} req/s = {ratio:.2f} x bare ({TARGETS[scenario]})"
            )
    print(
        f"# token service RSS: {first_rss:.1f} MB after the first runs, {second_rss:.1f} MB after one more"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
