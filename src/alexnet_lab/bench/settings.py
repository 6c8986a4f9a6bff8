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
    train_steps: int = 10  # per round; 5 left the figure to chance on a shared machine
    infer_steps: int = 10
    latency_runs: int = 20
    jpeg_images: int = 256  # images in the JPEG input-pipeline measurement
    repeats: int = 3  # rounds of (ours, reference), alternating; medians are reported
    threads: int = 0  # 0: the framework's default
    workers: int = 0  # --data: loader workers on both sides; 0: what `alexnet train` picks
    view_samples: int = 64  # --data: samples decoded and augmented for the per-core figure
    device: str = "auto"  # PyTorch: auto|cpu|cuda[:N]|mps; Keras: TensorFlow's placement, 'cpu' hides GPUs

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchSettings:
        return cls(**json.loads(text))


def reference_sgd() -> dict:
    """The --data references' SGD settings (besides the learning rate): `alexnet train`'s defaults
    (RunConfig: momentum, Nesterov when there is momentum, weight decay), so that ours and the
    reference do the same work per step."""
    from alexnet_lab.train.config import RunConfig

    config = RunConfig()
    return {"momentum": config.momentum, "nesterov": config.momentum > 0, "weight_decay": config.weight_decay}


def timed(step: Callable[[], object], warmup: int, runs: int) -> float:
    """Seconds per call of `step` after `warmup` untimed calls (best of the mean, one block)."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(runs):
        step()
    return (time.perf_counter() - start) / runs


def inference_speed(run: Callable[[object], object], batch, settings: BenchSettings) -> dict:
    """Images/s at the benchmark batch and batch-1 latency of `run(batch)`; `batch` is anything
    sliceable along its first axis (a numpy array, a tensor)."""
    one = batch[:1]
    infer_s = timed(lambda: run(batch), settings.warmup, settings.infer_steps)
    latency_s = timed(lambda: run(one), settings.warmup, settings.latency_runs)
    return {"infer_img_s": settings.batch / infer_s, "latency_ms": 1000 * latency_s}


def int8_speed(predict_logits_int8: Callable, quantized, batch_nhwc, settings: BenchSettings) -> dict:
    """inference_speed of a quantized model, through its backend's predict_logits_int8(model,
    batch, batch_size), under the int8_ keys."""
    speed = inference_speed(lambda batch: predict_logits_int8(quantized, batch, len(batch)), batch_nhwc, settings)
    return {"int8_infer_img_s": speed["infer_img_s"], "int8_latency_ms": speed["latency_ms"]}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
