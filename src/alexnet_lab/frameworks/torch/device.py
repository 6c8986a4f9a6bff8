"""Device and precision choice for PyTorch: `auto` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.precision import train_precision


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(name: str = "auto") -> torch.device:
    """Turn auto|cpu|cuda[:N]|mps into a torch.device that exists here.

    Raises:
        UserInputError: the asked-for device is not present (the message lists what is).
    """
    available = available_devices()
    if name == "auto":
        preferred = next((d for d in available if d.startswith("cuda")), "mps" if "mps" in available else "cpu")
        return torch.device(preferred)
    wanted = "cuda:0" if name == "cuda" else name
    if wanted not in available:
        raise UserInputError(f"device '{name}' is not available here; available: {', '.join(available)}.")
    return torch.device(wanted)


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16 or fp16
    dtype: torch.dtype | None  # autocast dtype; None for fp32

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)


def device_kind(device: torch.device) -> tuple[str, bool]:
    """(device type in core.precision's terms, whether it is a GPU that computes bf16)."""
    if device.type == "cuda":
        return "gpu", torch.cuda.is_bf16_supported()
    return device.type, False


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The training precision that runs on `device` (the rule is core.precision.train_precision)."""
    name = train_precision(name, *device_kind(device))
    return Precision(name, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name])


def use_channels_last(setting: str, device: torch.device) -> bool:
    """--channels-last on|off|auto. auto: on for CUDA and the CPU, where oneDNN's convolutions run
    faster on NHWC (measured by benchmarks/channels_last.py: docs/performance.md), off for MPS."""
    return _switch("--channels-last", setting, device.type in ("cuda", "cpu"))


def use_compile(setting: str, device: torch.device) -> bool:
    """--compile on|off|auto: torch.compile the training forward. auto: on for CUDA only: on the
    CPU compiled owt ran slower than eager, after long compiling with a cold cache
    (benchmarks/torch_compile.py; the measurements: docs/performance.md)."""
    return _switch("--compile", setting, device.type == "cuda")


def _switch(flag: str, setting: str, auto: bool) -> bool:
    """An auto|on|off flag: on, off, or `auto` (what auto means on this device)."""
    if setting not in ("auto", "on", "off"):
        raise UserInputError(f"{flag} takes auto, on or off; received '{setting}'.")
    return setting == "on" or (setting == "auto" and auto)


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format
