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

from shared.models import ShareRequest
from shared.tokens import TokenCodec
from tests.servers import free_port

SECRET = "bench-secret-key-of-at-least-thirty-two-bytes"
ORTHANC_ID = "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee"  # bench.sh's default
# More than the verified-token cache holds (20,000): cycling through them, none is cached.
FRESH_TOKENS = 50_000
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


def _fresh_tokens(url: str, args: argparse.Namespace, tmp: Path) -> float:
    """Validation req/s when no token repeats (more tokens than the verified-token cache)."""
    request = ShareRequest.model_validate(
        {
            "studies": [{"dicom-uid": "1.2.3", "orthanc-id": ORTHANC_ID}],
            "type": "stone-viewer-publication",
        }
    )
    codec = TokenCodec([SECRET.encode()])
    tokens = tmp / "tokens.txt"
    tokens.write_text("\n".join(codec.encode(request)[0] for _ in range(FRESH_TOKENS)) + "\n")
    body = f'{{"orthanc-id": "{ORTHANC_ID}", "level": "study", "method": "get"}}'
    script = Path(__file__).with_name("fresh_tokens.lua")
    rate = 0.0
    for seconds in (args.warmup, args.duration):  # warm-up, then measured
        command = [
            "wrk", "-t1", f"-c{args.conns.split()[-1]}", f"-d{seconds}s", "-s", str(script),
            url, "--", str(tokens), body,
        ]  # fmt: skip
        if shutil.which("taskset"):
            command = ["taskset", "-c", "1", *command]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result = next(line for line in output.splitlines() if line.startswith("RESULT "))
        _, requests, duration, p50, p99, failed, errors = result.split()
        if int(failed) or int(errors):
            raise SystemExit(f"fresh-token run failed: {result}")
        rate = int(requests) / (int(duration) / 1e6)
    print(f"fresh {args.conns.split()[-1]} {rate:.1f} {int(p50) / 1000:.3f} {int(p99) / 1000:.3f}")
    return rate


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
            fresh = _fresh_tokens(f"http://127.0.0.1:{service_port}", args, Path(tmp))
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
    top = args.conns.split()[-1]
    bare_top = bare_rates.get(f"a@{top}", 0.0)
    ratio = fresh / bare_top if bare_top else float("nan")
    print(
        f"fresh@{top}: {fresh:.0f} req/s = {ratio:.2f} x bare "
        "(a new token every request: >= 3x the original, about 0.2 of bare)"
    )
    print(
        f"# token service RSS: {first_rss:.1f} MB after the first runs, {second_rss:.1f} MB after one more"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
