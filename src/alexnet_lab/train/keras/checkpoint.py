"""Keras training checkpoints: RUN/checkpoints/last.keras-ckpt.npz and best.keras-ckpt.npz.

One uncompressed .npz, written atomically, holding plain arrays only (read with
allow_pickle=False, so a checkpoint cannot run code):
- ``model/NNNN``: every model variable in ``model.variables`` order, BatchNorm statistics and the
  dropout seed-generator states included (so dropout continues exactly after a resume);
- ``optN/NNNN``: the variables of optimizer group N (iteration count, lr, momenta);
- ``ema/NNNN``: with --ema-decay, the moving average (train.ema), its update count in state.json;
- ``state.json``: UTF-8 JSON bytes: format, epoch, phase, phase_step, best, history, metadata,
  loss scale, the variable paths (checked on load) and how many optimizer groups there are.
Arrays are copied to host memory, so a GPU-trained run resumes on a CPU-only machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.frameworks.registry import ENTRIES

SUFFIX = ENTRIES["keras"].checkpoint_suffix  # .keras-ckpt.npz
FORMAT = "alexnet-lab keras checkpoint 1"


def _numpy(variable) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(variable.value))


def save_checkpoint(path: str | os.PathLike[str], model, optimizers: list, state: dict[str, Any]) -> Path:
    """Write model and optimizer variables plus `state` (JSON-serialisable) atomically."""
    with atomic_path(path) as tmp:
        write_checkpoint(tmp, model, optimizers, state)
    return Path(path)


def write_checkpoint(path: str | os.PathLike[str], model, optimizers: list, state: dict[str, Any],
                     ema: Sequence[np.ndarray] = ()) -> None:
    """Write the checkpoint to `path` in place (callers make it atomic); `ema`: the moving average's arrays."""
    arrays = {f"model/{i:04d}": _numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"ema/{i:04d}": np.asarray(a) for i, a in enumerate(ema)})
    for group, optimizer in enumerate(optimizers):
        arrays.update({f"opt{group}/{i:04d}": _numpy(v) for i, v in enumerate(optimizer.variables)})
    doc = {**state, "format": FORMAT, "variables": [v.path for v in model.variables], "groups": len(optimizers)}
    arrays["state.json"] = np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as fh:  # a file object: np.savez would append '.npz' to a name
        np.savez(fh, **arrays)


class Checkpoint:
    """A loaded checkpoint: `state` (the JSON part) and the arrays, applied on demand."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                self.arrays = {key: data[key] for key in data.files}
            self.state = json.loads(self.arrays.pop("state.json").tobytes().decode("utf-8"))
        except Exception as exc:  # numpy / zipfile / json raise many types for damaged files
            raise WeightFormatError(f"checkpoint {self.path} cannot be read ({type(exc).__name__}); delete it to "
                                    "restart the run, or restore it from a copy.") from None
        if self.state.get("format") != FORMAT:
            raise WeightFormatError(f"{self.path} is not a Keras training checkpoint of this project "
                                    f"(format {self.state.get('format')!r}); expected {FORMAT!r}.")

    def _assign(self, prefix: str, variables: list, what: str) -> None:
        keys = sorted(k for k in self.arrays if k.startswith(f"{prefix}/"))
        shapes = [tuple(v.shape) for v in variables]
        if len(keys) != len(variables) or any(self.arrays[k].shape != s for k, s in zip(keys, shapes)):
            raise WeightFormatError(f"checkpoint {self.path} does not fit the {what} ({len(keys)} saved variables, "
                                    f"{len(variables)} expected); it was written by another model or version.")
        for key, variable in zip(keys, variables):
            variable.assign(self.arrays[key])

    def restore_model(self, model) -> None:
        self._assign("model", model.variables, "model")

    def ema_arrays(self, count: int) -> list[np.ndarray]:
        """The moving average's arrays (train.ema), checked to be `count`."""
        keys = sorted(k for k in self.arrays if k.startswith("ema/"))
        if len(keys) != count:
            raise WeightFormatError(f"checkpoint {self.path} holds {len(keys)} moving-average arrays, the model "
                                    f"averages {count}; it was written by another configuration.")
        return [self.arrays[k] for k in keys]

    def restore_optimizers(self, optimizers: list) -> None:
        if int(self.state["groups"]) != len(optimizers):
            raise WeightFormatError(f"checkpoint {self.path} has {self.state['groups']} optimizer groups, the phase "
                                    f"has {len(optimizers)}; it was written by another configuration.")
        for group, optimizer in enumerate(optimizers):
            self._assign(f"opt{group}", optimizer.variables, f"optimizer group {group}")
