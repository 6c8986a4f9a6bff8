"""The training loop, written once for every framework: phases, epochs, the learning-rate
schedule, validation through evaluate's metrics (flip-averaged with --eval-flip, on the weights'
moving average with --ema-decay: see train.ema), checkpoints every epoch, resume, early stop.

What needs a framework (a step, a loader, distribution, the checkpoint file) is a
:class:`FrameworkTrainer`, implemented in ``train/torch/trainer.py`` and ``train/keras/trainer.py``.
Resuming recomputes the schedule position from the epoch, so a run resumed with another number
of processes keeps its learning-rate schedule; the last checkpoint and the best model are
committed as a pair (train.context), so a crash at any point resumes to the uninterrupted result.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from alexnet_lab.core.errors import TrainingError
from alexnet_lab.evaluate.dataset_eval import average_views
from alexnet_lab.evaluate.metrics import evaluate_logits
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.context import RunContext
from alexnet_lab.train.phases import Phase, phase_at
from alexnet_lab.train.schedules import lr_factor

log = logging.getLogger(__name__)


class FrameworkTrainer(Protocol):
    """The framework-specific half of training, driven by :func:`fit`."""

    train_size: int  # images in the whole training store (all processes together)
    epoch_images: int  # images this process trains on per epoch (its share)
    steps_per_epoch: int  # optimizer steps per epoch, the same in every process

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        """Restore the model (and the framework's own state) from `path`; return the state dict."""

    def after_resume(self, start_epoch: int) -> None:
        """Once the start epoch is known (distributed processes check they agree)."""

    def start_phase(self, phase: Phase, optimizer_state: Any | None) -> None:
        """Set the trainable layers, make the optimizer(s) and step; load `optimizer_state` if given."""

    def batches(self, epoch: int) -> Iterable[tuple[Any, Any]]:
        """This process's training batches of the epoch, augmented and shuffled by (seed, epoch)."""

    def step(self, x: Any, y: Any, lr_factor: float) -> tuple[float, int, int]:
        """One optimizer step at peak lr x `lr_factor` (and, with --ema-decay, one update of the
        weights' moving average): (loss, correct predictions, images)."""

    def all_sum(self, values: Sequence[float]) -> Sequence[float]:
        """The values summed over every process (themselves in a single process)."""

    def after_epoch(self) -> None:
        """Make the processes' models agree before validation (BatchNorm statistics)."""

    def val_logits(self, batch_size: int, mirrored: bool = False) -> np.ndarray:
        """Logits of the evaluated weights (the moving average with --ema-decay) for the whole
        validation store, in order, in every process; `mirrored`: of each image's mirror image."""

    def agree(self, values: list[float]) -> list[float]:
        """One set of validation numbers for every process, so all take the same decisions."""

    def checkpoint_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """`state` plus what this framework needs to resume (optimizer, RNG, loss scale, the moving average)."""

    def write_checkpoint(self, tmp: Path, state: dict[str, Any]) -> None:
        """Write the checkpoint file at `tmp` (train.context moves it into place)."""

    def to_canonical(self) -> dict[str, np.ndarray]:
        """The evaluated weights (the moving average with --ema-decay) in the canonical layout."""


def _resume(trainer: FrameworkTrainer, ctx: RunContext, total_epochs: int) -> tuple[int, dict | None]:
    """(start epoch, checkpoint state): the last checkpoint's, digest-checked, with the best files
    repaired from it when a kill left them behind; (0, None) for a fresh start."""
    path = ctx.resume_checkpoint
    if path is None:
        return 0, None
    ctx.verify_checkpoint(path)
    state = trainer.load_checkpoint(path)
    start_epoch = int(state["epoch"])
    ctx.restore(state["history"], state["best"], state.get("best_epoch"))
    ctx.repair_best(path, ctx.checkpoint_path("best"), start_epoch, trainer.to_canonical)
    log.info("resuming at epoch %d of %d", start_epoch + 1, total_epochs)
    return start_epoch, state


def train_epoch(trainer: FrameworkTrainer, config: RunConfig, phase: Phase, phase_step: int, epoch: int,
                ctx: RunContext) -> dict:
    """One pass over this process's share of the training store; returns the epoch's train
    metrics (summed over all processes) and the last layer's learning rate."""
    total_steps = phase.epochs * trainer.steps_per_epoch
    warmup = int(config.warmup_epochs * trainer.steps_per_epoch)
    step_every = config.step_epochs * trainer.steps_per_epoch
    loss_sum, correct, seen, factor = 0.0, 0, 0, 1.0
    with ctx.progress(total=trainer.epoch_images, desc=f"epoch {epoch + 1}/{config.epochs} [{phase.name}]") as bar:
        for x, y in trainer.batches(epoch):
            factor = lr_factor(phase_step, total_steps, config.schedule, warmup, step_every)
            loss, hits, count = trainer.step(x, y, factor)
            phase_step += 1
            loss_sum, correct, seen = loss_sum + loss * count, correct + hits, seen + count
            bar.update(count)
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at epoch {epoch + 1}; lower --lr or add --grad-clip.")
            if config.limit_steps and phase_step % trainer.steps_per_epoch >= config.limit_steps:
                break  # --limit-steps: a short epoch (smoke tests, benchmarks)
    loss_sum, correct, seen = trainer.all_sum([loss_sum, correct, seen])
    return {"train_loss": loss_sum / seen, "train_top1": correct / seen, "lr": phase.layer_lrs[-1][1] * factor}


def validate(trainer: FrameworkTrainer, batch_size: int, class_names: Sequence[str], labels: np.ndarray,
             flip: bool = False) -> dict:
    """val_loss, val_top1 and val_top5 of the whole validation store (evaluate's metrics); with
    `flip` (--eval-flip), of each image and its mirror averaged as `evaluate --crops 2` does."""
    logits = trainer.val_logits(batch_size)
    if flip:
        logits = average_views([logits, trainer.val_logits(batch_size, mirrored=True)])
    result = evaluate_logits(logits, labels, class_names)
    values = trainer.agree([result.loss, result.top1, result.top5])
    return dict(zip(("val_loss", "val_top1", "val_top5"), values))


def _phases_from(phases: list[Phase], start_epoch: int) -> Iterator[tuple[int, int, Phase]]:
    for epoch in range(start_epoch, sum(p.epochs for p in phases)):
        index = phase_at(phases, epoch)
        yield epoch, index, phases[index]


def fit(trainer: FrameworkTrainer, config: RunConfig, phases: list[Phase], ctx: RunContext,
        val_labels: np.ndarray) -> None:
    """Train through all phases, resuming from the run's last checkpoint when there is one."""
    total_epochs = sum(p.epochs for p in phases)
    start_epoch, resumed = _resume(trainer, ctx, total_epochs)
    trainer.after_resume(start_epoch)
    current = -1
    for epoch, phase_index, phase in _phases_from(phases, start_epoch):
        if phase_index != current:  # a new trainable set: new optimizers and a fresh step
            same_phase = resumed is not None and int(resumed["phase"]) == phase_index and epoch == start_epoch
            trainer.start_phase(phase, resumed if same_phase else None)
            current = phase_index
        phase_step = (epoch - sum(p.epochs for p in phases[:phase_index])) * trainer.steps_per_epoch
        started = time.perf_counter()
        row = train_epoch(trainer, config, phase, phase_step, epoch, ctx)
        trainer.after_epoch()
        row.update(validate(trainer, config.batch_size * 2, ctx.meta.categories, val_labels, config.eval_flip))
        seconds = time.perf_counter() - started
        row.update({"epoch": epoch + 1, "phase": phase.name, "epoch_seconds": seconds,
                    "images_per_second": trainer.train_size / seconds})
        improved = ctx.record(row)
        if ctx.writer:  # a distributed run's other processes: rank 0 / the chief writes
            state = trainer.checkpoint_state({
                "alexnet_lab": ctx.meta.to_metadata(), "epoch": epoch + 1, "phase": phase_index,
                "phase_step": phase_step + trainer.steps_per_epoch, "best": ctx.best, "best_epoch": ctx.best_epoch,
                "history": ctx.history})
            ctx.commit_pair(ctx.checkpoint_path("last"), ctx.checkpoint_path("best"),
                            lambda tmp, state=state: trainer.write_checkpoint(tmp, state), epoch + 1, improved,
                            trainer.to_canonical)
        ctx.commit_epoch(row)
        if ctx.should_stop(config.early_stopping):
            log.info("early stopping: no val top-1 gain for %d epochs", config.early_stopping)
            break
    ctx.save_model(trainer.to_canonical(), "last")
