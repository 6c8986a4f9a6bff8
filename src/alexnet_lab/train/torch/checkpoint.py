"""Training checkpoints: written atomically, loaded with weights_only=True on any device.

A checkpoint is a plain dict of tensors and builtins: {'model': state_dict, 'alexnet_lab': meta,
'optimizer': ..., 'epoch': ..., 'phase': ..., 'step': ..., 'best': ..., 'history': [...],
'torch_rng': ...}, with --ema-decay also 'ema': {'model': state_dict, 'updates': n} (train.ema).
Model tensors are saved from the CPU, so a CUDA-trained checkpoint loads on a CPU-only machine
and the other way round.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class _ErrorKeeper:
    """File wrapper that keeps the OSError of a failed write: torch.save's C++ writer replaces it
    with a RuntimeError that no longer says 'disk full' or 'file too large'."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def write_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """torch.save `state` (moved to the CPU) to `path` in place; a failed write raises its OSError."""
    with open(path, "wb") as fh:
        keeper = _ErrorKeeper(fh)
        try:
            torch.save(_to_cpu(state), keeper)
        except RuntimeError:
            if keeper.error is not None:
                raise keeper.error from None
            raise


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        write_checkpoint(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise WeightFormatError(f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to restart "
                                "the run, or restore it from a copy.") from None
