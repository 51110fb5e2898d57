"""What the anonymizer costs: frames and rendered images through it vs straight from Orthanc,
measured in the same run with wrk, and the time to rewrite the metadata of a 1,000-instance
study (the pure transform, in process).

Debian's Orthanc (no authorization plugin: what is measured is the proxy) serves the
generated test studies; the anonymizer runs as `orthanc-share serve anonymizer`.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom

from anonymizer.dicom_json import anonymize_dicom_json
from shared.models import ShareRequest
from shared.pseudonyms import pseudonymizer_for
from shared.tokens import TokenCodec
from tests.e2e.dicom_data import encode_instance, generate_data
from tests.e2e.orthanc import OrthancFactory, seed_storage
from tests.servers import start_service

SECRET = "bench-secret-key-of-at-least-thirty-two-bytes"
ANONYMIZATION_KEY = "bench-anonymization-key-of-at-least-32-bytes"
FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> tuple[float, float]:
    """Requests per second and median latency (ms) of one wrk run."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    assert median is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[median.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed answers\n{output}")
    return rate, float(median.group(1)) * scale


def metadata_rewrite_ms(instances: int, repeats: int = 5) -> float:
    """Best time to de-identify the DICOM JSON metadata of a study of `instances` instances."""
    data = generate_data()
    study = data.studies[0]
    series, instance = next(study.instances())
    template = pydicom.dcmread(io.BytesIO(encode_instance(study, series, instance)))
    del template.PixelData
    base = template.to_json_dict()
    document: list[dict[str, Any]] = []
    for number in range(instances):
        item = dict(base)
        item["00080018"] = {"vr": "UI", "Value": [f"{instance.sop_instance_uid}.{number}"]}
        item["00200013"] = {"vr": "IS", "Value": [number + 1]}
        document.append(item)
    request = ShareRequest.model_validate(
        {
            "studies": [{"dicom-uid": study.study_instance_uid}],
            "type": "stone-viewer-publication",
            "anonymized": True,
        }
    )
    _, share = TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()).encode(
        request
    )
    timings = []
    for _ in range(repeats):
        pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())  # fresh: no memo help
        started = time.perf_counter()
        anonymize_dicom_json(document, pseudo, markers=True)
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def main() -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found (make system-deps)")

    print(
        f"# metadata of a 1,000-instance study de-identified in {metadata_rewrite_ms(1000):.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_data(
            patient_count=1, studies_per_patient=1, series_per_study=1, instances_per_series=2
        )
        seed = seed_storage(Path(tmp) / "seed", data)
        factory = OrthancFactory(Path(tmp) / "servers", seed)
        try:
            orthanc = factory("bench")
            env = {
                "SECRET_KEY": SECRET,
                "ANONYMIZATION_KEY": ANONYMIZATION_KEY,
                "ANONYMIZED_ORTHANC_URL": orthanc.base_url,
                "LOG_LEVEL": "WARNING",
            }
            proxy = start_service("anonymizer", env, Path(tmp))
            try:
                study = data.studies[0]
                series, instance = next(study.instances())
                request = ShareRequest.model_validate(
                    {
                        "studies": [{"dicom-uid": study.study_instance_uid}],
                        "type": "stone-viewer-publication",
                        "anonymized": True,
                    }
                )
                token, share = TokenCodec(
                    [SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()
                ).encode(request)
                pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())
                real = (
                    study.study_instance_uid,
                    series.series_instance_uid,
                    instance.sop_instance_uid,
                )
                fake = tuple(pseudo.uid(uid) for uid in real)
                template = "/dicom-web/studies/{}/series/{}/instances/{}"
                cases = {
                    "frame": ("/frames/1", {"Accept": FRAMES}),
                    "rendered": ("/rendered", {"Accept": "image/jpeg"}),
                }
                print(
                    "# request direct_req/s via_anonymizer_req/s ratio direct_p50_ms via_p50_ms added_ms"
                )
                for name, (suffix, headers) in cases.items():
                    direct = wrk(
                        orthanc.base_url + template.format(*real) + suffix,
                        headers,
                        args.duration,
                        args.connections,
                    )
                    via = wrk(
                        proxy.url + template.format(*fake) + suffix,
                        headers | {"Authorization": f"Bearer {token}"},
                        args.duration,
                        args.connections,
                    )
                    print(
                        f"{name} {direct[0]:.0f} {via[0]:.0f} {via[0] / direct[0]:.2f} "
                        f"{direct[1]:.2f} {via[1]:.2f} {via[1] - direct[1]:.2f}"
                    )
            finally:
                proxy.stop()
        finally:
            factory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
