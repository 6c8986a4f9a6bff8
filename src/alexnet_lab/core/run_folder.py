"""A training run's folder: the one place that names its files. The trainer writes them, evaluate,
report, serve and the weight loader read them; all of them ask here.

    RUN/config.json          the resolved RunConfig (train.resume reads it back)
    RUN/metrics.jsonl        one line per epoch
    RUN/split.json           the train / val (/ test) split the run used
    RUN/best.safetensors     the best epoch's weights (what predict / evaluate load from a run)
    RUN/last.safetensors     the last epoch's weights
    RUN/eval.json            the best model on the validation split
    RUN/held-out-eval.json   the best model on the held-out split, when there is one
    RUN/samples.json         sample predictions for the report
    RUN/plots/NAME.png       curves, confusion, samples, ...
    RUN/checkpoints/         resumable state (each framework names its own file in it)
    RUN/tensorboard/         TensorBoard scalars
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class _In:
    """A file of the folder, as an attribute: the folder's path joined with the file's name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunFolder | None, owner: type) -> Path:
        if run is None:
            raise AttributeError(f"a RunFolder's {self.name} path needs a folder: RunFolder(RUN).attribute")
        return run.path / self.name


@dataclass(frozen=True)
class RunFolder:
    """The paths of a run folder's files (nothing is read or created here)."""

    path: Path

    CONFIG: ClassVar[str] = "config.json"
    METRICS: ClassVar[str] = "metrics.jsonl"
    SPLIT: ClassVar[str] = "split.json"
    BEST_WEIGHTS: ClassVar[str] = "best.safetensors"
    LAST_WEIGHTS: ClassVar[str] = "last.safetensors"
    EVAL: ClassVar[str] = "eval.json"
    HELD_OUT_EVAL: ClassVar[str] = "held-out-eval.json"
    HELD_OUT_EVAL_1CROP: ClassVar[str] = "held-out-eval-1crop.json"  # the same with --crops 1, when the first is not
    SAMPLES: ClassVar[str] = "samples.json"
    PLOTS: ClassVar[str] = "plots"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    TENSORBOARD: ClassVar[str] = "tensorboard"
    WEIGHTS: ClassVar[tuple[str, ...]] = (BEST_WEIGHTS, LAST_WEIGHTS)  # what loading a run looks for, in order
    REQUIRED: ClassVar[tuple[str, ...]] = (CONFIG, METRICS, EVAL)  # what makes a folder a finished run

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    # each file's path: RunFolder(RUN).config is RUN/config.json
    config, metrics, split = _In(CONFIG), _In(METRICS), _In(SPLIT)
    best_weights, last_weights = _In(BEST_WEIGHTS), _In(LAST_WEIGHTS)
    eval, held_out_eval, samples = _In(EVAL), _In(HELD_OUT_EVAL), _In(SAMPLES)
    held_out_eval_1crop = _In(HELD_OUT_EVAL_1CROP)
    checkpoints, tensorboard = _In(CHECKPOINTS), _In(TENSORBOARD)

    def checkpoint(self, kind: str, suffix: str) -> Path:
        """RUN/checkpoints/KIND<suffix>: a training checkpoint ('last' or 'best') in the format of
        the framework whose checkpoint ending is `suffix` (frameworks.registry)."""
        return self.path / self.CHECKPOINTS / f"{kind}{suffix}"

    def has_last_checkpoint(self) -> bool:
        """True when RUN/checkpoints holds a 'last' checkpoint, of any framework: the run can be resumed."""
        return any((self.path / self.CHECKPOINTS).glob("last.*"))

    def weights_file(self, kind: str) -> Path:
        """RUN/KIND.safetensors: the 'best' or 'last' weights."""
        return {"best": self.best_weights, "last": self.last_weights}[kind]

    def plot(self, name: str) -> Path:
        """RUN/plots/NAME.png."""
        return self.path / self.PLOTS / f"{name}.png"

    def weights(self) -> list[Path]:
        """The run's weight files that exist, best first."""
        return [self.path / name for name in self.WEIGHTS if (self.path / name).exists()]


__all__ = ["RunFolder"]
