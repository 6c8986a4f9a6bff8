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
from alexnet_lab.core.hardware import cpu_flags, cpu_has_native_bf16, cpu_kind, flags_overridden
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK, ENTRIES, NAMES

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
    for package in (package for entry in ENTRIES.values() for package in entry.packages):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": model, "cores": os.cpu_count(), "cpu_kind": cpu_kind(), "native_bf16": cpu_has_native_bf16(),
            "cpu_flags_overridden": flags_overridden(),
            "avx512": "avx512f" in cpu_flags(), "python": platform.python_version(), **versions}


OPTIONAL_KEYS = ("bf16_infer_img_s", "bf16_latency_ms", "int8_infer_img_s", "int8_latency_ms")
ROW_KEYS = ("train_precision", "infer_precision", "layout", "train_policy")


def _median_and_spread(values: list[float]) -> tuple[float, list[float]]:
    return float(np.median(values)), [float(min(values)), float(max(values))]


def _compare(framework: str, settings: BenchSettings) -> dict:
    """`repeats` rounds of ours then the reference, each in a fresh process; the median of every
    figure over the rounds (a shared machine's speed drifts by tens of percent between minutes, so
    one pair of runs can mislead), its [min, max] under `spread`, each round's figures under
    details.rounds, and what each row ran (precision, layout) under `ours` and `reference`."""
    rounds = []
    for number in range(1, max(1, settings.repeats) + 1):
        log.info("benchmark: %s round %d of %d (ours, then reference)", framework, number, settings.repeats)
        rounds.append((_worker([framework, "ours", settings.to_json()]),
                       _worker([framework, "reference", settings.to_json()])))
    entry: dict = {"spread": {}}
    for side, prefix in ((0, ""), (1, "reference_")):
        for key in KEYS + OPTIONAL_KEYS:
            if key in rounds[0][side]:
                entry[prefix + key], entry["spread"][prefix + key] = _median_and_spread([r[side][key] for r in rounds])
    entry["train_speedup"] = entry["train_img_s"] / entry["reference_train_img_s"]
    entry["infer_speedup"] = entry["infer_img_s"] / entry["reference_infer_img_s"]
    for kind in ("bf16", "int8"):
        if f"{kind}_infer_img_s" in entry:
            entry[f"{kind}_infer_speedup"] = entry[f"{kind}_infer_img_s"] / entry["reference_infer_img_s"]
    speedups = {key: [o[num] / r[den] for o, r in rounds] for key, num, den in (
        ("train_speedup", "train_img_s", "train_img_s"), ("infer_speedup", "infer_img_s", "infer_img_s"),
        ("bf16_infer_speedup", "bf16_infer_img_s", "infer_img_s")) if num in rounds[0][0]}
    entry["spread"].update({key: [min(v), max(v)] for key, v in speedups.items()})
    entry["ours"] = {k: rounds[0][0][k] for k in ROW_KEYS if k in rounds[0][0]}
    entry["reference"] = {k: rounds[0][1][k] for k in ROW_KEYS if k in rounds[0][1]}
    first = rounds[0][0]
    entry["details"] = {k: v for k, v in first.items() if k not in (*KEYS, *OPTIONAL_KEYS, *ROW_KEYS)}
    entry["details"]["rounds"] = [
        {**{key: values[i] for key, values in speedups.items()},
         **{k: o[k] for k in ("train_img_s", "infer_img_s", *OPTIONAL_KEYS) if k in o},
         "reference_train_img_s": r["train_img_s"], "reference_infer_img_s": r["infer_img_s"]}
        for i, (o, r) in enumerate(rounds)]
    return entry


DATA_KEYS = ("loader_img_s", "train_img_s", "step_img_s", "fed", "view_img_s_per_core")


# --data: framework -> (worker measurement, the reference it runs beside ours), from the framework registry
DATA_MEASUREMENTS = {name: entry.data_benchmark for name, entry in ENTRIES.items() if entry.data_benchmark[0]}


def run_data_benchmark(settings: BenchSettings, folder: str, framework: str = DEFAULT_FRAMEWORK) -> dict:
    """`repeats` rounds of ours then the framework's plain recipe on the photos in `folder`
    (bench.data_bench, bench.keras_data_bench), each in a fresh process: medians, [min, max] under
    `spread`, ours / reference ratios per round."""
    kind, reference = DATA_MEASUREMENTS[framework]
    rounds = []
    for number in range(1, max(1, settings.repeats) + 1):
        log.info("benchmark --data: round %d of %d (ours, then %s)", number, settings.repeats, reference)
        rounds.append({impl: _worker([kind, impl, settings.to_json(), folder]) for impl in ("ours", "reference")})
    doc: dict = {"framework": framework, "reference_recipe": reference, "spread": {}}
    for impl in ("ours", "reference"):
        doc[impl] = {key: float(np.median([r[impl][key] for r in rounds])) for key in DATA_KEYS}
        doc[impl].update({k: v for k, v in rounds[0][impl].items() if k not in DATA_KEYS})
        doc["spread"][impl] = {key: [min(r[impl][key] for r in rounds), max(r[impl][key] for r in rounds)]
                               for key in DATA_KEYS}
    for key in ("train_img_s", "loader_img_s", "view_img_s_per_core"):
        ratios = [r["ours"][key] / r["reference"][key] for r in rounds]
        doc[f"{key}_ratio"], doc["spread"][f"{key}_ratio"] = float(np.median(ratios)), [min(ratios), max(ratios)]
    doc["rounds"] = rounds
    doc["machine"] = {**machine_info(), "load_average": list(os.getloadavg())}
    doc["settings"] = json.loads(settings.to_json())
    doc["folder"] = folder
    return doc


def run_benchmark(settings: BenchSettings, frameworks: tuple[str, ...] = NAMES, jpeg: bool = True) -> dict:
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
    """How close each row runs to the matrix-product peak of the precision it computes in (fp32 or
    bf16, both measured), and the throughput each peak allows.

    Training is counted as three forward passes (forward, input gradients, weight gradients).
    A speedup target above `ceilings[p].train_img_s / reference_train_img_s` cannot be reached in
    precision p. int8 rows are left out: the matmul peak measured is a float one.
    """
    from alexnet_lab.core.spec import get_arch

    gflop = 2 * get_arch(settings.variant).macs(settings.size, settings.classes) / 1e9
    peaks = {"fp32": doc["machine"]["float32_matmul_gflops"], "bf16": doc["machine"]["bfloat16_matmul_gflops"]}
    out: dict = {"forward_gflop_per_image": gflop, "train_gflop_per_image": 3 * gflop,
                 "peak_gflops": peaks,
                 "ceilings": {p: {"infer_img_s": peak / gflop, "train_img_s": peak / (3 * gflop)}
                              for p, peak in peaks.items()},
                 # the earlier keys, kept for scripts that read them
                 "fp32_peak_gflops": peaks["fp32"], "infer_ceiling_img_s": peaks["fp32"] / gflop,
                 "train_ceiling_img_s": peaks["fp32"] / (3 * gflop)}
    for framework in NAMES:
        if framework not in doc:
            continue
        entry, rows = doc[framework], {}
        for side, prefix in (("ours", ""), ("reference", "reference_")):
            train_p = entry[side].get("train_precision", "fp32")
            train_p = train_p if train_p in peaks else "fp32"  # fp16 on a GPU: no fp16 peak measured
            rows[side] = {"train_precision": train_p,
                          "train_utilisation": entry[prefix + "train_img_s"] * 3 * gflop / peaks[train_p],
                          "infer_utilisation": entry[prefix + "infer_img_s"] * gflop / peaks["fp32"]}
        if "bf16_infer_img_s" in entry:
            rows["ours"]["bf16_infer_utilisation"] = entry["bf16_infer_img_s"] * gflop / peaks["bf16"]
        reference = entry["reference_train_img_s"], entry["reference_infer_img_s"]
        out[framework] = {
            **rows, "train_utilisation": rows["ours"]["train_utilisation"],
            "infer_utilisation": rows["ours"]["infer_utilisation"],
            **{f"max_train_speedup_{p}": c["train_img_s"] / reference[0] for p, c in out["ceilings"].items()},
            **{f"max_infer_speedup_{p}": c["infer_img_s"] / reference[1] for p, c in out["ceilings"].items()}}
    return out
