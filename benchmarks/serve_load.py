"""Load on `alexnet serve`: requests/s and latency of POST /api/predict at batch 1 with N
concurrent clients, and the server's peak memory (its process plus the framework workers).

    python benchmarks/serve_load.py WEIGHTS [--clients 4] [--requests 200] [--frameworks torch keras]

Prints one JSON object. Each request uploads one 500x375 JPEG (a photo-sized file); the first
`--warmup` requests are not timed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _jpeg() -> bytes:
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (12, 16, 3))
    image = np.kron(coarse, np.ones((32, 32, 1)))[:375, :500]
    out = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _post(url: str, data: bytes) -> float:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"photo.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - started


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of the process and its children (the framework workers), summed, in MB."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"])
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    server = subprocess.Popen([sys.executable, "-m", "alexnet_lab", "serve", args.weights, "--port", str(port),
                               "--frameworks", *args.frameworks], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/api/info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        data = _jpeg()
        for _ in range(args.warmup):
            _post(url + "/api/predict", data)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            latencies = list(pool.map(lambda _: _post(url + "/api/predict", data), range(args.requests)))
        wall = time.perf_counter() - started
        ms = sorted(1000 * x for x in latencies)
        print(json.dumps({
            "weights": args.weights, "clients": args.clients, "requests": args.requests,
            "frameworks_loaded": args.frameworks, "endpoint": "POST /api/predict (torch, batch 1, 500x375 JPEG)",
            "requests_per_s": round(args.requests / wall, 2), "latency_ms_p50": round(statistics.median(ms), 1),
            "latency_ms_p95": round(ms[int(0.95 * (len(ms) - 1))], 1), "peak_rss_mb": round(_peak_rss_mb(server.pid)),
            "cpu_flags": sorted({"amx_bf16", "avx512_bf16"} & set(Path("/proc/cpuinfo").read_text().split())),
            "cores": os.cpu_count(),
        }, indent=2))
    finally:
        server.send_signal(2)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
