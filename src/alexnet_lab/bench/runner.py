"""Run every measurement in its own process and assemble the benchmark JSON document."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from alexnet_lab.bench.settings import BenchSettings
from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.hardware import cpu_flags, cpu_has_native_bf16

log = logging.getLogger(__name__)
KEYS = ("train_img_s", "infer_img_s", "latency_ms", "peak_rss_mb")


def _worker(args: list[str]) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "alexnet_lab.bench.worker", *args], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise AlexnetLabError(f"benchmark worker {' '.join(args[:2])} failed: {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _jpeg_folder(count: int, root: Path) -> Path:
    """Real JPEG files (500x375, like typical photos) in two class folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((500, 375), Image.BILINEAR)
        image.save(folder / f"{i:04d}.jpg", quality=90)
    return root


def machine_info() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in ("torch", "torchvision", "keras", "tensorflow-cpu", "tensorflow"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": model, "cores": os.cpu_count(), "native_bf16": cpu_has_native_bf16(),
            "avx512": "avx512f" in cpu_flags(), "python": platform.python_version(), **versions}


def _compare(framework: str, settings: BenchSettings) -> dict:
    """`repeats` rounds of ours then the reference, each in a fresh process; the median of every
    figure over the rounds (this machine's speed drifts by tens of percent between minutes, so
    one pair of runs can mislead) with each round's speedups kept under details.rounds."""
    rounds = []
    for number in range(1, max(1, settings.repeats) + 1):
        log.info("benchmark: %s round %d of %d (ours, then reference)", framework, number, settings.repeats)
        rounds.append((_worker([framework, "ours", settings.to_json()]),
                       _worker([framework, "reference", settings.to_json()])))
    ours = {k: float(np.median([o[k] for o, _ in rounds])) for k in KEYS}
    entry = {**ours, **{f"reference_{k}": float(np.median([r[k] for _, r in rounds])) for k in KEYS}}
    entry["train_speedup"] = entry["train_img_s"] / entry["reference_train_img_s"]
    entry["infer_speedup"] = entry["infer_img_s"] / entry["reference_infer_img_s"]
    if "int8_infer_img_s" in rounds[0][0]:
        for key in ("int8_infer_img_s", "int8_latency_ms"):
            entry[key] = float(np.median([o[key] for o, _ in rounds]))
        entry["int8_infer_speedup"] = entry["int8_infer_img_s"] / entry["reference_infer_img_s"]
    first = rounds[0][0]
    entry["details"] = {k: v for k, v in first.items() if k not in (*KEYS, "int8_infer_img_s", "int8_latency_ms")}
    entry["details"]["rounds"] = [
        {"train_speedup": o["train_img_s"] / r["train_img_s"], "infer_speedup": o["infer_img_s"] / r["infer_img_s"],
         "train_img_s": o["train_img_s"], "reference_train_img_s": r["train_img_s"],
         "infer_img_s": o["infer_img_s"], "reference_infer_img_s": r["infer_img_s"],
         **({"int8_infer_img_s": o["int8_infer_img_s"]} if "int8_infer_img_s" in o else {})}
        for o, r in rounds]
    return entry


def run_benchmark(settings: BenchSettings, frameworks: tuple[str, ...] = ("torch", "keras"), jpeg: bool = True) -> dict:
    """Measure ours and the reference for each framework; returns the JSON document."""
    doc: dict = {}
    for framework in frameworks:
        doc[framework] = _compare(framework, settings)
    if jpeg:
        with tempfile.TemporaryDirectory(prefix="alexnet-bench-") as tmp:
            folder = _jpeg_folder(settings.jpeg_images, Path(tmp))
            doc["input_pipeline"] = _worker(["pipeline", "-", settings.to_json(), str(folder)])
    doc["machine"] = {**machine_info(), **_worker(["peak", "-", settings.to_json()])}
    doc["roofline"] = roofline(doc, settings)
    doc["settings"] = json.loads(settings.to_json())
    return doc


def roofline(doc: dict, settings: BenchSettings) -> dict:
    """How close each path runs to the fp32 matrix-product peak, and the throughput that peak allows.

    Training is counted as three forward passes (forward, input gradients, weight gradients).
    A speedup target above `train_ceiling_img_s / reference_train_img_s` cannot be reached in fp32.
    """
    from alexnet_lab.core.spec import get_arch

    gflop = 2 * get_arch(settings.variant).macs(settings.size, settings.classes) / 1e9
    peak = doc["machine"]["float32_matmul_gflops"]
    out: dict = {"forward_gflop_per_image": gflop, "train_gflop_per_image": 3 * gflop,
                 "fp32_peak_gflops": peak, "infer_ceiling_img_s": peak / gflop, "train_ceiling_img_s": peak / (3 * gflop)}
    for framework in ("torch", "keras"):
        if framework in doc:
            entry = doc[framework]
            out[framework] = {
                "train_utilisation": entry["train_img_s"] * 3 * gflop / peak,
                "infer_utilisation": entry["infer_img_s"] * gflop / peak,
                "max_train_speedup_fp32": out["train_ceiling_img_s"] / entry["reference_train_img_s"],
                "max_infer_speedup_fp32": out["infer_ceiling_img_s"] / entry["reference_infer_img_s"]}
    return out
