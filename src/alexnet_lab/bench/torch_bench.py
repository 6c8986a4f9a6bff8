"""PyTorch measurements: our model with the project's defaults, and the plain reference
(torchvision's alexnet with a plain fp32 SGD loop) as people write it."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from alexnet_lab.bench.settings import BenchSettings, inference_speed, int8_speed, peak_rss_mb, timed
from alexnet_lab.frameworks.torch.device import Precision


def _ours(settings: BenchSettings, device: torch.device):
    """`alexnet train`'s own step (train.torch.step.build_step) with its defaults on this device
    (--precision auto, channels-last, --compile auto, its optimizer), fed a uint8 batch as its loader
    does; returns (model, step, the normalised batch for inference, precision, channels-last)."""
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.datasets import normalisation
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.torch.step import build_step

    config = RunConfig(variant=settings.variant, batch_size=settings.batch, lr=0.01)
    trainer = build_step(config, settings.classes, settings.size, normalisation(TORCHVISION_IMAGENET), device)
    images = torch.randint(0, 256, (settings.batch, settings.size, settings.size, 3), dtype=torch.uint8)
    y = torch.randint(0, settings.classes, (settings.batch,), device=device)

    def train_step():
        trainer.step(images, y, 1.0)
        _sync(device)

    with torch.no_grad():
        x = trainer.normaliser(images)
    return trainer.model, train_step, x, trainer.precision, trainer.normaliser.channels_last


def _reference(settings: BenchSettings, device: torch.device):
    """torchvision's alexnet with a plain fp32 NCHW SGD loop, as people write it."""
    import torchvision

    model = torchvision.models.alexnet(num_classes=settings.classes).to(device)
    x = torch.randn(settings.batch, 3, settings.size, settings.size, device=device)
    y = torch.randint(0, settings.classes, (settings.batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        _sync(device)

    model.train()
    return model, train_step, x, Precision("fp32", None), False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(impl: str, settings: BenchSettings) -> dict:
    """Train and inference throughput, batch-1 latency and peak RSS of one implementation.

    Ours times `alexnet train`'s own step with its defaults here (train.torch.step.build_step:
    the precision `auto` picks, channels-last, its optimizer) and infers as `alexnet predict` does by default (fp32, exact,
    channels-last, inference mode). Where `--precision auto` picks bf16 for inference, that path
    (weights held in bf16) is measured too, under the `bf16_` keys.
    """
    if settings.threads:
        torch.set_num_threads(settings.threads)
    from alexnet_lab.frameworks.torch.device import resolve_device

    torch.manual_seed(0)
    device = resolve_device(settings.device)
    ours = impl == "ours"
    model, train_step, x, precision, channels_last = (_ours if ours else _reference)(settings, device)
    train_s = timed(train_step, settings.warmup, settings.train_steps)
    model.eval()
    result = {"train_img_s": settings.batch / train_s, "peak_rss_mb": 0.0,
              **_inference_speed(model, x, settings, torch.inference_mode if ours else torch.no_grad, device),
              "train_precision": precision.name, "infer_precision": "fp32",
              "layout": "channels_last" if channels_last else "nchw",
              "threads": torch.get_num_threads(), "device": str(device)}
    result["peak_rss_mb"] = peak_rss_mb()
    if ours:
        result.update(_measure_bf16_inference(model, x, settings, device))
    if ours and device.type == "cpu":
        result.update(_measure_int8(model, x, settings))
    return result


def _inference_speed(model, x: torch.Tensor, settings: BenchSettings, guard, device: torch.device) -> dict:
    """Images/s at the benchmark batch and batch-1 latency of `model` on `x` (its dtype and layout)."""
    def infer(batch):
        with guard():
            out = model(batch)
        _sync(device)
        return out

    return inference_speed(infer, x, settings)


def _measure_bf16_inference(model, x: torch.Tensor, settings: BenchSettings, device: torch.device) -> dict:
    """`predict --precision auto` where it picks bf16: the weights cast to bfloat16 once."""
    from alexnet_lab.frameworks.torch.model import auto_inference_precision, cast_for_inference

    if auto_inference_precision(str(device)) != "bf16":
        return {}
    cast = cast_for_inference(copy.deepcopy(model), "bf16")
    speed = _inference_speed(cast, x.to(torch.bfloat16), settings, torch.inference_mode, device)
    return {"bf16_infer_img_s": speed["infer_img_s"], "bf16_latency_ms": speed["latency_ms"]}


def _measure_int8(model, x: torch.Tensor, settings: BenchSettings) -> dict:
    """Inference throughput and batch-1 latency of the int8 model (--precision int8), calibrated on
    the benchmark batch itself: only its speed is measured here, its accuracy in the tests."""
    from alexnet_lab.frameworks.torch.quantize import predict_logits_int8, quantize_int8

    batch = x.permute(0, 2, 3, 1).contiguous().numpy()
    quantized = quantize_int8(model, batch)
    return {**int8_speed(predict_logits_int8, quantized, batch, settings), "int8_engine": quantized.engine}


def measure_jpeg_pipeline(settings: BenchSettings, folder: str) -> dict:
    """Images/s of the project's input pipeline on real JPEG files: decode, resize, crop, normalise."""
    import time

    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data import read_class_folder
    from alexnet_lab.data.datasets import decode_all, normalisation
    from alexnet_lab.evaluate.dataset_eval import normalised_batch

    index = read_class_folder(folder)
    start = time.perf_counter()
    images, _, _ = decode_all(index, TORCHVISION_IMAGENET)
    batch = normalised_batch(images, settings.size, normalisation(TORCHVISION_IMAGENET))
    seconds = time.perf_counter() - start
    return {"jpeg_pipeline_img_s": len(index) / seconds, "jpeg_images": len(index), "checksum": float(np.abs(batch).mean())}


def measure_matmul_peak(settings: BenchSettings, size: int = 2048, runs: int = 5) -> dict:
    """GFLOP/s of a square fp32 and bf16 matrix product: the compute ceiling AlexNet's
    convolutions and fully connected layers can approach on this device."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    from alexnet_lab.frameworks.torch.device import resolve_device

    device = resolve_device(settings.device)
    result = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)

        def product(a=a, b=b):  # bound now: timed() calls it within this iteration
            torch.mm(a, b)
            _sync(device)

        seconds = timed(product, 2, runs)
        result[f"{str(dtype).split('.')[-1]}_matmul_gflops"] = 2 * size**3 / seconds / 1e9
    return result
