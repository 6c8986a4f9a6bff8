"""Benchmark settings, shared by the runner and its worker processes."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BenchSettings:
    variant: str = "owt"
    size: int = 224
    batch: int = 64
    classes: int = 1000
    warmup: int = 2  # untimed steps first (allocations, XLA compilation, oneDNN primitive caches)
    train_steps: int = 5
    infer_steps: int = 5
    latency_runs: int = 10
    jpeg_images: int = 256  # images in the JPEG input-pipeline measurement
    repeats: int = 3  # rounds of (ours, reference), alternating; medians are reported
    threads: int = 0  # 0: the framework's default
    device: str = "auto"  # PyTorch: auto|cpu|cuda[:N]|mps; Keras: TensorFlow's placement, 'cpu' hides GPUs

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchSettings:
        return cls(**json.loads(text))


def timed(step: Callable[[], object], warmup: int, runs: int) -> float:
    """Seconds per call of `step` after `warmup` untimed calls (best of the mean, one block)."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(runs):
        step()
    return (time.perf_counter() - start) / runs


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
