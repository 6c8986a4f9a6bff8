"""Peak memory of `load_weights` per format, relative to the file size.

Writes full-size random weight files into a temporary folder — a torchvision-format owt `.pth`
(~233 MiB), a `bvlc_alexnet.npy` pickled the way the real file is (Python 2 numpy, protocol 2,
array bytes as Python 2 str), the same dict saved by Python 3 `np.save` (protocol 3), and a
canonical `.safetensors` — then measures each load in a fresh subprocess:

  baseline = resident set size (VmRSS) after importing what the load needs and collecting garbage
  peak     = the process's peak RSS (VmHWM) while `load_weights(path)` runs, with the peak reset
             just before the call (writing 5 to /proc/self/clear_refs); where that is not
             allowed, a thread sampling VmRSS every millisecond stands in
  ratio    = (peak - baseline) / file size; the target is <= 2 (the result itself is ~1)

Prints one JSON object. Linux only (/proc). Run: `python benchmarks/load_memory.py [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TARGET_RATIO = 2.0
BVLC_SHAPES = {
    "conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256), "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384), "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000),
}  # fmt: skip


# ---------------------------------------------------------------- files to load


class Python2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles like Python 2's numpy did: bytes and str as BINSTRING, `numpy.core` globals."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_as_py2_str(self, obj: str | bytes) -> None:
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_as_py2_str
    dispatch[str] = save_as_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def _bvlc_layers(seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: [rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01), np.zeros(shape[-1], np.float32)]
            for name, shape in BVLC_SHAPES.items()}


def write_py2_npy(path: Path, layers: dict[str, list[np.ndarray]]) -> Path:
    """np.save's .npy header, then a protocol-2 pickle of the 0-d object array holding the dict."""
    box = np.empty((), dtype=object)
    box[()] = layers
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(box)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": ()})
        fh.write(buffer.getvalue())
    return path


def write_files(folder: Path) -> dict[str, Path]:
    import torch
    import torchvision

    from alexnet_lab.weights.files import load_weights, save_weights

    torch.manual_seed(0)
    files = {"pth": folder / "alexnet-owt-random.pth"}
    torch.save(torchvision.models.alexnet().state_dict(), files["pth"])
    layers = _bvlc_layers()
    files["npy-py2"] = write_py2_npy(folder / "bvlc_alexnet.npy", layers)
    files["npy-py3"] = folder / "bvlc_alexnet-py3.npy"
    np.save(files["npy-py3"], layers, allow_pickle=True)
    files["safetensors"] = save_weights(load_weights(files["pth"]), folder / "alexnet-owt.safetensors")
    return files


# ---------------------------------------------------------------- measuring (in the subprocess)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _sampled_peak(run) -> tuple[object, int]:
    """Run `run()` while a thread samples VmRSS; returns (result, peak KiB)."""
    peak, done = [_status_kib("VmRSS")], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _status_kib("VmRSS"))
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = run()
    finally:
        done.set()
        thread.join()
    return result, max(peak[0], _status_kib("VmRSS"))


def measure(path: str) -> dict:
    """Import what loading `path` needs, then measure the load; runs in a fresh process."""
    from alexnet_lab.weights.files import load_weights

    if path.endswith((".pth", ".pt")):
        import alexnet_lab.frameworks.torch.io  # noqa: F401 - torch import is part of the baseline
    else:
        import alexnet_lab.weights.formats.caffe_npy  # noqa: F401
        import alexnet_lab.weights.formats.safetensors_io  # noqa: F401
    gc.collect()
    baseline = _status_kib("VmRSS")
    if _reset_peak():
        method = "VmHWM after clear_refs"
        bundle = load_weights(path)
        peak = _status_kib("VmHWM")
    else:
        method = "VmRSS sampled every 1 ms"
        bundle, peak = _sampled_peak(lambda: load_weights(path))
    return {"baseline_kib": baseline, "peak_kib": peak, "params": bundle.param_count(), "method": method}


# ---------------------------------------------------------------- driver


def run(folder: Path) -> dict:
    files = write_files(folder)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    results = {}
    for name, path in files.items():
        command = [sys.executable, __file__, "--measure", str(path)]
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"measuring {path} failed:\n{out.stderr}")
        figures = json.loads(out.stdout)
        size = path.stat().st_size
        extra = figures["peak_kib"] * 1024 - figures["baseline_kib"] * 1024
        results[name] = {"file_mib": round(size / 2**20, 1), "baseline_mib": round(figures["baseline_kib"] / 1024, 1),
                         "peak_mib": round(figures["peak_kib"] / 1024, 1), "ratio": round(extra / size, 3),
                         "within_target": extra / size <= TARGET_RATIO, "method": figures["method"]}
    return {"target_ratio": TARGET_RATIO, "ratio": "(peak - baseline) / file size", "formats": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    parser.add_argument("--measure", metavar="FILE", help=argparse.SUPPRESS)  # the subprocess side
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        print(json.dumps(run(Path(args.keep)), indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="alexnet-load-memory-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
