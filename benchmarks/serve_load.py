"""Load on `alexnet serve`: requests/s and latency of POST /api/predict at 1, 4 and 16 concurrent
clients, with micro-batching off and on, the time to recover from a killed worker, and the
server's peak memory (its process plus the framework workers).

    python benchmarks/serve_load.py [WEIGHTS] [--clients 1 4 16] [--requests-per-client 12]
                                    [--waits 0 2 10] [--frameworks torch keras]

Without WEIGHTS a randomly initialised `owt` model (224x224 input, the ImageNet architecture) is
written to a temporary file: the speed of a forward pass does not depend on the weights' values.
Each request uploads one 500x375 JPEG (a photo-sized file); every configuration is warmed up first.
Configurations: `off` (--max-batch 1, the default) and `on` (--max-batch 32) with each --max-wait-ms
of --waits. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
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


def _random_owt(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.frameworks.torch import build_model, to_canonical
    from alexnet_lab.weights import save_weights

    meta = ModelMeta("owt", tuple(f"class {i}" for i in range(1000)), TORCHVISION_IMAGENET, source="random")
    return save_weights(WeightBundle(to_canonical(build_model("owt", 1000)), meta), folder / "owt-random.safetensors")


def _post(url: str, data: bytes) -> tuple[int, float]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"photo.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - started


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _peak_rss_mb(pid: int) -> float:
    """VmHWM of the process and its children (the framework workers), summed, in MB."""
    total = 0
    for p in [pid, *_children(pid)]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def _start(weights: str, frameworks: list[str], flags: list[str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    server = subprocess.Popen([sys.executable, "-m", "alexnet_lab", "serve", weights, "--port", str(port),
                               "--frameworks", *frameworks, *flags], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            urllib.request.urlopen(url + "/readyz", timeout=2)
            return server, url
        except OSError:
            time.sleep(0.25)
    server.kill()
    raise SystemExit("the server did not start")


def _load(url: str, data: bytes, clients: int, requests: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(lambda _: _post(url + "/api/predict", data), range(requests)))
    wall = time.perf_counter() - started
    ms = sorted(1000 * seconds for _, seconds in answers)
    return {"clients": clients, "requests": requests, "errors": sum(status != 200 for status, _ in answers),
            "requests_per_s": round(requests / wall, 2), "latency_ms_p50": round(statistics.median(ms), 1),
            "latency_ms_p95": round(ms[int(0.95 * (len(ms) - 1))], 1)}


def _recovery_s(server: subprocess.Popen, url: str, data: bytes) -> float:
    """Seconds from kill -9 of the torch worker until a prediction answers 200 again."""
    worker = next(p for p in _children(server.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text())
    os.kill(worker, signal.SIGKILL)
    killed = time.perf_counter()
    while _post(url + "/api/predict?framework=torch", data)[0] != 200:
        time.sleep(0.05)
    return round(time.perf_counter() - killed, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="?", help="weights to serve (default: a random owt model)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests-per-client", type=int, default=12)
    parser.add_argument("--waits", type=float, nargs="+", default=[0, 2, 10], help="--max-wait-ms values to try")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or str(_random_owt(Path(folder)))
        data, results = _jpeg(), {}
        configs = {"off": ["--max-batch", "1"],
                   **{f"on, wait {w:g} ms": ["--max-batch", "32", "--max-wait-ms", str(w)] for w in args.waits}}
        for name, flags in configs.items():
            server, url = _start(weights, args.frameworks, flags)
            try:
                for _ in range(8):
                    _post(url + "/api/predict", data)
                levels = [_load(url, data, c, max(24, c * args.requests_per_client)) for c in args.clients]
                peak = round(_peak_rss_mb(server.pid))  # before the kill: the first workers' high-water marks
                results[name] = {"flags": flags, "levels": levels, "peak_rss_mb": peak,
                                 "recovery_after_kill_s": _recovery_s(server, url, data)}
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=120)
            print(f"{name}: " + ", ".join(f"{lv['clients']} clients {lv['requests_per_s']} req/s" for lv in levels),
                  file=sys.stderr, flush=True)
    print(json.dumps({
        "weights": args.weights or "random owt (224x224)", "frameworks_loaded": args.frameworks,
        "endpoint": "POST /api/predict (torch, one 500x375 JPEG per request)", "configurations": results,
        "cpu_flags": sorted({"amx_bf16", "avx512_bf16"} & set(Path("/proc/cpuinfo").read_text().split())),
        "cores": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
