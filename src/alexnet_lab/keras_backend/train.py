"""The Keras training loop: phases, per-layer learning rates, checkpoints every epoch, resume.

The same contract as :mod:`alexnet_lab.torch_backend.train`: the framework-neutral parts (config,
phases, schedules, data stores, run folder, metrics log, evaluation) live in alexnet_lab.train and
alexnet_lab.evaluate; this module only does what needs Keras. Same phases, metric names,
checkpoint cadence, resume semantics and run-folder files, except that the checkpoints are
``checkpoints/{last,best}.keras-ckpt.npz`` (see :mod:`.checkpoint`). Runs on the TensorFlow
backend (tf.data input) and the PyTorch backend (numpy input); never imports both frameworks.
With --distribute (TensorFlow backend) the same loop runs under a tf.distribute strategy, see
:mod:`.distribute`; in a multi-worker run only the chief writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from alexnet_lab.core.errors import TrainingError
from alexnet_lab.core.spec import get_arch
from alexnet_lab.evaluate.metrics import evaluate_logits
from alexnet_lab.keras_backend.checkpoint import (
    SUFFIX,
    Checkpoint,
    checkpoint_file,
    resume_checkpoint_path,
    write_checkpoint,
)
from alexnet_lab.keras_backend.convert import from_canonical, model_variant, to_canonical
from alexnet_lab.keras_backend.data import StorePipeline
from alexnet_lab.keras_backend.initializers import torch_default_init
from alexnet_lab.keras_backend.precision import LossScale, dtype_policy, resolve_precision
from alexnet_lab.keras_backend.steps import PhaseStep, make_predict
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.runlog import RunContext
from alexnet_lab.train.schedules import lr_factor
from alexnet_lab.train.strategies import Phase, phase_at

log = logging.getLogger(__name__)


@dataclass
class Setup:
    model: keras.Model
    train: StorePipeline
    val: StorePipeline
    predict: object  # normalised batch -> numpy logits
    loss_scale: LossScale
    class_names: tuple[str, ...]
    distribution: object = None  # .distribute.Distribution under --distribute, else None


def _set_trainable(model: keras.Model, phase: Phase) -> None:
    """Freeze every weight layer the phase does not train. A frozen BatchNorm layer runs in
    inference mode in Keras 3 (moving statistics used and kept), like eval() in PyTorch."""
    spec = get_arch(model_variant(model))
    trainable = set(phase.trainable)
    for name in spec.layer_names + spec.bn_names:
        model.get_layer(name).trainable = name in trainable



def train_epoch(setup: Setup, step: PhaseStep, config: RunConfig, phase: Phase, phase_step: int,
                steps_per_epoch: int, epoch: int, ctx: RunContext) -> tuple[dict, int]:
    """One pass over the training store; returns (train metrics and lr, phase step after it)."""
    total_steps = phase.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)
    loss_sum, correct, seen, factor = 0.0, 0, 0, 1.0
    with ctx.progress(total=len(setup.train), desc=f"epoch {epoch + 1}/{config.epochs} [{phase.name}]") as bar:
        for x, y in setup.train.batches(config.batch_size, epoch):
            factor = lr_factor(phase_step, total_steps, config.schedule, warmup, config.step_epochs * steps_per_epoch)
            step.set_lr(factor)
            loss, hits = step.run(x, y)
            phase_step += 1
            count = min(config.batch_size, len(setup.train) - seen)  # batches are consecutive slices of the order
            loss_sum, correct, seen = loss_sum + loss * count, correct + hits, seen + count
            bar.update(count)
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at epoch {epoch + 1}; lower --lr or add --grad-clip.")
    lr_now = phase.layer_lrs[-1][1] * factor  # the last layer's, as the PyTorch loop reports its last group's
    return {"train_loss": loss_sum / seen, "train_top1": correct / seen, "lr": lr_now}, phase_step


def predict_store(setup: Setup, pipeline: StorePipeline, batch_size: int) -> np.ndarray:
    """Logits for a whole store, in order (inference mode, no augmentation)."""
    return np.concatenate([setup.predict(x) for x, _ in pipeline.batches(batch_size)])


def _val_metrics(setup: Setup, batch_size: int) -> dict:
    result = evaluate_logits(predict_store(setup, setup.val, batch_size), setup.val.labels, setup.class_names)
    values = [result.loss, result.top1, result.top5]
    if setup.distribution is not None:  # multi-worker: one set of numbers, so all take the same decisions
        values = setup.distribution.agree(values)
    return dict(zip(("val_loss", "val_top1", "val_top5"), values))


def _state(ctx: RunContext, setup: Setup, epoch: int, phase_index: int, phase_step: int) -> dict:
    return {"alexnet_lab": ctx.meta.to_metadata(), "epoch": epoch + 1, "phase": phase_index, "phase_step": phase_step,
            "best": ctx.best, "best_epoch": ctx.best_epoch, "history": ctx.history,
            "loss_scale": setup.loss_scale.state()}


def _resume(setup: Setup, path: Path | None, ctx: RunContext, total_epochs: int) -> tuple[int, int, Checkpoint | None]:
    """(start epoch, phase step, checkpoint) from the last checkpoint, or a fresh start."""
    if path is None:
        return 0, 0, None
    ctx.verify_checkpoint(path)
    checkpoint = Checkpoint(path)
    checkpoint.restore_model(setup.model)
    state = checkpoint.state
    scale = state.get("loss_scale", {})
    setup.loss_scale.value = float(scale.get("value", setup.loss_scale.value)) if setup.loss_scale.enabled else 1.0
    setup.loss_scale.good_steps = int(scale.get("good_steps", 0))
    ctx.restore(state["history"], state["best"], state.get("best_epoch"))
    ctx.repair_best(path, checkpoint_file(ctx.checkpoint_path("best")), int(state["epoch"]),
                    lambda: to_canonical(setup.model))
    log.info("resuming at epoch %d of %d", int(state["epoch"]) + 1, total_epochs)
    return int(state["epoch"]), int(state["phase_step"]), checkpoint


def _save(ctx: RunContext, setup: Setup, step: PhaseStep, state: dict, improved: bool) -> None:
    if not ctx.writer:  # a multi-worker run's other workers: the chief writes
        return
    ctx.commit_pair(checkpoint_file(ctx.checkpoint_path("last")), checkpoint_file(ctx.checkpoint_path("best")),
                    lambda tmp: write_checkpoint(tmp, setup.model, step.optimizers, state), int(state["epoch"]),
                    improved, lambda: to_canonical(setup.model))


def fit(setup: Setup, config: RunConfig, phases: list[Phase], ctx: RunContext, resume_from: Path | None) -> None:
    """Train through all phases, resuming from `resume_from` when given."""
    steps_per_epoch = math.ceil(len(setup.train) / config.batch_size)
    total_epochs = sum(p.epochs for p in phases)
    start_epoch, phase_step, resumed = _resume(setup, resume_from, ctx, total_epochs)
    distribution = setup.distribution
    if distribution is not None:
        distribution.check_same_start(start_epoch)
        distribution.offset_dropout_seeds(setup.model)
    step, current = None, -1
    for epoch in range(start_epoch, total_epochs):
        phase_index = phase_at(phases, epoch)
        phase = phases[phase_index]
        if phase_index != current:  # new trainable set: new optimizers and a fresh compiled step
            _set_trainable(setup.model, phase)
            step = (PhaseStep(setup.model, phase, config, setup.loss_scale) if distribution is None
                    else distribution.phase_step(setup.model, phase, config, setup.loss_scale))
            if resumed is not None and int(resumed.state["phase"]) == phase_index and epoch == start_epoch:
                resumed.restore_optimizers(step.optimizers)
            else:
                phase_step = 0
            current = phase_index
        started = time.perf_counter()
        row, phase_step = train_epoch(setup, step, config, phase, phase_step, steps_per_epoch, epoch, ctx)
        if distribution is not None:  # validation and checkpoints use replica 0's BatchNorm statistics
            distribution.sync_batchnorm(setup.model)
        row.update(_val_metrics(setup, config.batch_size * 2))
        seconds = time.perf_counter() - started
        row.update({"epoch": epoch + 1, "phase": phase.name, "epoch_seconds": seconds,
                    "images_per_second": len(setup.train) / seconds})
        improved = ctx.record(row)
        _save(ctx, setup, step, _state(ctx, setup, epoch, phase_index, phase_step), improved)
        ctx.commit_epoch(row)
        if ctx.should_stop(config.early_stopping):
            log.info("early stopping: no val top-1 gain for %d epochs", config.early_stopping)
            break
    ctx.save_model(to_canonical(setup.model), "last")


def _resume_path(config: RunConfig, ctx: RunContext) -> Path | None:
    """The Keras checkpoint to continue from. run.py looks for the PyTorch last.pt only, so a
    Keras run folder is searched here too."""
    given = ctx.resume_checkpoint
    if given is not None and not str(given).endswith(SUFFIX):
        raise TrainingError(f"{given} was written by the PyTorch loop; resume this run with --framework torch.")
    return given if given is not None else (resume_checkpoint_path(ctx.run_dir) if config.resume else None)


def _seed(seed: int) -> None:
    """Seed Python, numpy and the backend. keras.utils.set_random_seed would import TensorFlow
    on every backend (to seed it), and TensorFlow must stay out of a PyTorch-backend process."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)  # Keras draws the seeds of unseeded SeedGenerators (dropout) from here
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def _deterministic() -> None:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    else:
        import torch

        torch.use_deterministic_algorithms(True)


def build_for_training(config: RunConfig, ctx: RunContext, bundle, precision) -> tuple[keras.Model, list[str]]:
    """The run's model under the precision policy, from PyTorch's initialisation (see
    .initializers) with the pretrained layers loaded over it; returns (model, re-initialised layers)."""
    from alexnet_lab.keras_backend.model import build_model
    from alexnet_lab.pretrained import load_pretrained

    meta = ctx.meta
    with dtype_policy(precision):
        model = build_model(meta.variant, meta.num_classes, config.dropout, input_size=meta.input_size)
    init = torch_default_init(get_arch(meta.variant), meta.num_classes, np.random.default_rng(config.seed))
    from_canonical(model, init)
    if bundle is None:
        return model, []
    return model, load_pretrained(model, "keras", bundle, meta.num_classes, config.skip_layers)


def train_run(config: RunConfig, ctx: RunContext, stores: dict, bundle, augment_spec, normalisation) -> dict:
    """Build the model (loading pretrained weights when given), plan the phases and fit.

    Args:
        config: the resolved run config.
        ctx: the run folder.
        stores: {'train': (images, labels), 'val': (images, labels)} uint8 stores.
        bundle: pretrained WeightBundle or None.
        augment_spec: AugmentSpec for training views.
        normalisation: (scale, offset, bgr) from train.datasets.normalisation.
    Returns:
        What was resolved at run time (device, precision, backend, distribution, re-initialised layers).
    """
    from alexnet_lab.keras_backend.device import resolve_device
    from alexnet_lab.keras_backend.distribute import resolve_distribution
    from alexnet_lab.train.strategies import plan_phases

    device = resolve_device(config.device)
    distribution = resolve_distribution(config.distribute, device)  # before TensorFlow computes anything
    _seed(config.seed)
    if config.deterministic:
        _deterministic()
    precision = resolve_precision(config.precision, device)
    with distribution.scope() if distribution is not None else contextlib.nullcontext():
        model, reinit = build_for_training(config, ctx, bundle, precision)
    phases = plan_phases(config, get_arch(ctx.meta.variant), tuple(reinit))
    crop, split = ctx.meta.input_size, distribution.distribute_dataset if distribution is not None else None
    setup = Setup(model, StorePipeline(*stores["train"], crop, normalisation, augment_spec, config.seed, split),
                  StorePipeline(*stores["val"], crop, normalisation), make_predict(model),
                  LossScale(precision.name == "fp16"), tuple(ctx.meta.categories), distribution)
    backend = keras.backend.backend()
    resolved = {"device": device, "precision": precision.name, "keras_backend": backend,
                "reinitialised_layers": list(reinit), "phases": [p.name for p in phases], "checkpoint_suffix": SUFFIX,
                "distribute": {"strategy": "none", "replicas": 1} if distribution is None else distribution.resolved()}
    log.info("training on %s (%s, Keras on %s), phases %s", device, precision.name, backend,
             ", ".join(f"{p.name}x{p.epochs}" for p in phases))
    if distribution is not None:
        log.info("tf.distribute: %s, %d replica(s) on %s", distribution.name, resolved["distribute"]["replicas"],
                 ", ".join(distribution.devices))
        if distribution.is_chief != ctx.writer:  # both read TF_CONFIG (train.world); they cannot disagree
            raise TrainingError("the chief in TF_CONFIG is not the process writing the run folder; check TF_CONFIG.")
    fit(setup, config, phases, ctx, _resume_path(config, ctx))
    return resolved
