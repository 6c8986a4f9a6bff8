"""PyTorch measurements: our model with the project's defaults, and the plain reference
(torchvision's alexnet with a plain fp32 SGD loop) as people write it."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from alexnet_lab.bench.settings import BenchSettings, inference_speed, int8_speed, peak_rss_mb, timed


def _model(impl: str, settings: BenchSettings, device: torch.device):
    """The model, its training precision and its layout: the plain reference in fp32 NCHW, ours
    with what `alexnet train` resolves by default on this device (--precision auto, channels-last)."""
    from alexnet_lab.frameworks.torch.device import Precision, resolve_precision, use_channels_last

    if impl == "reference":
        import torchvision

        return torchvision.models.alexnet(num_classes=settings.classes), Precision("fp32", None), False
    from alexnet_lab.frameworks.torch.model import build_model

    model = build_model(settings.variant, settings.classes, input_size=settings.size)
    return model, resolve_precision("auto", device), use_channels_last("auto", device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(impl: str, settings: BenchSettings) -> dict:
    """Train and inference throughput, batch-1 latency and peak RSS of one implementation.

    Ours trains as `alexnet train` does by default here (autocast in the precision `auto` picks,
    channels-last, foreach SGD) and infers as `alexnet predict` does by default (fp32, exact,
    channels-last, inference mode). Where `--precision auto` picks bf16 for inference, that path
    (weights held in bf16) is measured too, under the `bf16_` keys.
    """
    if settings.threads:
        torch.set_num_threads(settings.threads)
    from alexnet_lab.frameworks.torch.device import resolve_device

    torch.manual_seed(0)
    device = resolve_device(settings.device)
    model, precision, channels_last = _model(impl, settings, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    x = torch.randn(settings.batch, 3, settings.size, settings.size, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, settings.classes, (settings.batch,), device=device)
    ours = impl == "ours"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True if ours else None)

    def train_step():
        with precision.autocast(device):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=ours)
        loss.backward()
        optimizer.step()
        _sync(device)

    model.train()
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
