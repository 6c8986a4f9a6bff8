"""Does the streaming input pipeline keep the training step fed? Both alone, per framework.

On a generated folder of 500x375 JPEGs (benchmarks/jpeg_data.py, in /tmp, deleted afterwards):
  pipeline_img_s  the framework's training input alone (streamed folder, owt's preprocessing,
                  flip augmentation, normalised batches of --batch): the PyTorch DataLoader with
                  the default streamed worker count, or the Keras tf.data pipeline
  step_img_s      the training step alone (owt, 10 classes, SGD, --precision auto) on one fixed batch
  fed             pipeline_img_s / step_img_s (>= 1: the step never waits for data)
for both --decoder draft and pil. Prints one JSON object.
Run: `nice -n 10 python benchmarks/pipeline_speed.py --framework torch|keras [--images 512 --batch 32]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
from jpeg_data import make_jpeg_folder  # noqa: E402


def _timed(batches, limit: int) -> float:
    """img/s over `limit` batches after the first (warm-up: workers and tf.data start)."""
    iterator = iter(batches)
    first = next(iterator)
    seen, started = 0, time.perf_counter()
    for _, (x, _y) in zip(range(limit), iterator):
        seen += len(x)
    del first
    return seen / (time.perf_counter() - started)


def torch_parts(index, spec, decoder: str, batch: int):
    import torch

    from alexnet_lab.core.spec import get_arch
    from alexnet_lab.data import AugmentSpec
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.frameworks.torch.device import resolve_precision
    from alexnet_lab.frameworks.torch.model import build_model
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.phases import plan_phases
    from alexnet_lab.train.torch.data import StoreDataset, loader_workers, make_loader
    from alexnet_lab.train.torch.trainer import build_optimizer

    images = StreamedImages(index.paths, spec, decoder)
    dataset = StoreDataset(images, index.labels, spec.crop, AugmentSpec(hflip=True))
    loader = make_loader(dataset, batch, True, 0, 0, loader_workers(0, images, torch.device("cpu")))
    config = RunConfig(variant="owt")
    model = build_model("owt", 10).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, plan_phases(config, get_arch("owt"), ())[0], config)
    precision = resolve_precision("auto", torch.device("cpu"))
    x = torch.randn(batch, 3, spec.crop, spec.crop).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        with precision.autocast(torch.device("cpu")):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return loader, step


def keras_parts(index, spec, decoder: str, batch: int):
    import numpy as np

    from alexnet_lab.core.spec import get_arch
    from alexnet_lab.data import AugmentSpec
    from alexnet_lab.data.datasets import normalisation
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.frameworks.keras.model import build_model
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.keras.data import StorePipeline
    from alexnet_lab.train.keras.precision import LossScale, dtype_policy, resolve_precision
    from alexnet_lab.train.keras.steps import PhaseStep
    from alexnet_lab.train.phases import plan_phases

    images = StreamedImages(index.paths, spec, decoder)
    pipeline = StorePipeline(images, index.labels, spec.crop, normalisation(spec), AugmentSpec(hflip=True))
    config = RunConfig(framework="keras", variant="owt")
    precision = resolve_precision("auto", "cpu")
    with dtype_policy(precision):
        model = build_model("owt", 10)
    phase_step = PhaseStep(model, plan_phases(config, get_arch("owt"), ())[0], config, LossScale(False))
    phase_step.set_lr(1.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, spec.crop, spec.crop, 3)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    return pipeline.batches(batch, 0), lambda: phase_step.run(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["torch", "keras"], default="torch")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.datasets import read_source

    parts = torch_parts if args.framework == "torch" else keras_parts
    root = Path(tempfile.mkdtemp(prefix="alexnet-pipeline-", dir="/tmp"))
    result = {}
    try:
        index = read_source(str(make_jpeg_folder(root, args.images)))["all"]
        for decoder in ("draft", "pil"):
            batches, step = parts(index, TORCHVISION_IMAGENET, decoder, args.batch)
            result[f"pipeline_img_s_{decoder}"] = round(_timed(batches, args.images // args.batch - 2), 1)
        step()  # warm-up (graph tracing, oneDNN primitives)
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        result["step_img_s"] = round(args.steps * args.batch / (time.perf_counter() - started), 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["fed_draft"] = round(result["pipeline_img_s_draft"] / result["step_img_s"], 2)
    print(json.dumps({"framework": args.framework, "batch": args.batch, "images": args.images, **result}, indent=2))


if __name__ == "__main__":
    main()
