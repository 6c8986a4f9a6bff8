"""The Keras half of training: model under the precision policy, compiled phase step, tf.data or
numpy input, tf.distribute and the checkpoint file, as the
:class:`~alexnet_lab.train.loop.FrameworkTrainer` that the one loop (train/loop.py) drives.

The same phases, metric names, checkpoint cadence, resume semantics and run-folder files as the
PyTorch trainer, except that the checkpoints are ``checkpoints/{last,best}.keras-ckpt.npz`` (see
:mod:`.checkpoint`). Runs on the TensorFlow backend (tf.data input) and the PyTorch backend
(numpy input); never imports both frameworks. With --distribute (TensorFlow backend) the same
loop runs under a tf.distribute strategy, see :mod:`.distribute`; in a multi-worker run only the
chief writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from pathlib import Path
from typing import Any

import keras
import numpy as np

from alexnet_lab.core.errors import TrainingError
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks.keras.convert import from_canonical, model_variant, to_canonical
from alexnet_lab.frameworks.keras.device import resolve_device
from alexnet_lab.frameworks.keras.initializers import torch_default_init
from alexnet_lab.frameworks.keras.model import build_and_load
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.context import RunContext
from alexnet_lab.train.keras.checkpoint import (
    SUFFIX,
    Checkpoint,
    write_checkpoint,
)
from alexnet_lab.train.keras.data import StorePipeline
from alexnet_lab.train.keras.distribute import resolve_distribution
from alexnet_lab.train.keras.ema import KerasEMA
from alexnet_lab.train.keras.precision import LossScale, dtype_policy, resolve_precision
from alexnet_lab.train.keras.steps import PhaseStep, make_predict
from alexnet_lab.train.loop import fit
from alexnet_lab.train.phases import Phase, plan_phases
from alexnet_lab.train.whitening import initial_conv1

log = logging.getLogger(__name__)


def _set_trainable(model: keras.Model, phase: Phase) -> None:
    """Freeze every weight layer the phase does not train. A frozen BatchNorm layer runs in
    inference mode in Keras 3 (moving statistics used and kept), like eval() in PyTorch."""
    spec = get_arch(model_variant(model))
    trainable = set(phase.trainable)
    for name in spec.layer_names + spec.bn_names:
        model.get_layer(name).trainable = name in trainable



class KerasTrainer:
    """One run's Keras state; the methods are train.loop.FrameworkTrainer's."""

    def __init__(self, model: keras.Model, train: StorePipeline, val: StorePipeline, config: RunConfig,
                 loss_scale: LossScale, distribution=None):
        self.model, self.train, self.val, self.config = model, train, val, config
        self.predict = make_predict(model)  # normalised batch -> numpy logits
        self.loss_scale = loss_scale
        self.distribution = distribution  # .distribute.Distribution under --distribute, else None
        self.train_size = self.epoch_images = len(train)
        self.steps_per_epoch = math.ceil(len(train) / config.batch_size)
        self.phase_step_fn: PhaseStep | None = None
        self._checkpoint: Checkpoint | None = None
        self._seen = 0
        self.ema = KerasEMA(model, config.ema_decay) if config.ema_decay > 0 else None

    def _evaluated(self):
        """The block in which the model holds the evaluated weights (the average with --ema-decay)."""
        return self.ema.swapped() if self.ema is not None else contextlib.nullcontext()

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        self._checkpoint = Checkpoint(path)
        self._checkpoint.restore_model(self.model)
        state = self._checkpoint.state
        if self.ema is not None:
            self.ema.restore(self._checkpoint.ema_arrays(len(self.ema.variables)), state["ema_updates"])
        scale = state.get("loss_scale", {})
        self.loss_scale.value = float(scale.get("value", self.loss_scale.value)) if self.loss_scale.enabled else 1.0
        self.loss_scale.good_steps = int(scale.get("good_steps", 0))
        return state

    def after_resume(self, start_epoch: int) -> None:
        if self.distribution is not None:
            self.distribution.check_same_start(start_epoch)
            self.distribution.offset_dropout_seeds(self.model)

    def start_phase(self, phase: Phase, optimizer_state: dict[str, Any] | None) -> None:
        _set_trainable(self.model, phase)  # a new trainable set: new optimizers and a fresh compiled step
        self.phase_step_fn = (PhaseStep(self.model, phase, self.config, self.loss_scale) if self.distribution is None
                              else self.distribution.phase_step(self.model, phase, self.config, self.loss_scale))
        if optimizer_state is not None:
            self._checkpoint.restore_optimizers(self.phase_step_fn.optimizers)

    def batches(self, epoch: int):
        self._seen = 0
        return self.train.batches(self.config.batch_size, epoch)

    def step(self, x, y, lr_factor: float) -> tuple[float, int, int]:
        self.phase_step_fn.set_lr(lr_factor)
        loss, hits = self.phase_step_fn.run(x, y)
        if self.ema is not None:
            self.ema.update()
        count = min(self.config.batch_size, self.train_size - self._seen)  # batches are consecutive slices of the order
        self._seen += count
        return loss, hits, count

    def all_sum(self, values):
        return values  # every worker steps through the whole store

    def after_epoch(self) -> None:
        if self.distribution is not None:  # validation and checkpoints use replica 0's BatchNorm statistics
            self.distribution.sync_batchnorm(self.model)

    def val_logits(self, batch_size: int, mirrored: bool = False) -> np.ndarray:
        with self._evaluated():
            return np.concatenate([self.predict(_mirror(x) if mirrored else x) for x, _ in self.val.batches(batch_size)])

    def agree(self, values: list[float]) -> list[float]:
        # multi-worker: one set of numbers, so all take the same decisions
        return values if self.distribution is None else self.distribution.agree(values)

    def checkpoint_state(self, state: dict[str, Any]) -> dict[str, Any]:
        ema = {} if self.ema is None else {"ema_updates": self.ema.updates}
        return {**state, "loss_scale": self.loss_scale.state(), **ema}

    def write_checkpoint(self, tmp: Path, state: dict[str, Any]) -> None:
        write_checkpoint(tmp, self.model, self.phase_step_fn.optimizers, state,
                         self.ema.arrays() if self.ema is not None else ())

    def to_canonical(self) -> dict[str, np.ndarray]:
        with self._evaluated():
            return to_canonical(self.model)


def _mirror(x):
    """A batch of NHWC images mirrored left to right (numpy on the PyTorch backend, a tensor on TensorFlow)."""
    return np.ascontiguousarray(x[:, :, ::-1]) if isinstance(x, np.ndarray) else x[:, :, ::-1]


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
    meta = ctx.meta
    return _build(config, meta.variant, meta.num_classes, meta.input_size, bundle, precision)


def _build(config: RunConfig, variant: str, num_classes: int, input_size: int, bundle, precision):
    init = torch_default_init(get_arch(variant), num_classes, np.random.default_rng(config.seed))
    with dtype_policy(precision):  # the framework's one build route, PyTorch's initialisation before loading
        return build_and_load(variant, num_classes, config.dropout, input_size, weights=bundle,
                              skip_layers=config.skip_layers, initialise=lambda model: from_canonical(model, init))


def build_step(config: RunConfig, num_classes: int, input_size: int, precision) -> tuple[keras.Model, PhaseStep]:
    """The model and compiled first-phase step `alexnet train --framework keras` runs for `config`
    under `precision`, on a fresh model (no weights, no run folder, no data): what `alexnet
    benchmark` times. Call `step.set_lr(factor)` then `step.run(x, y)` per batch, as KerasTrainer.step."""
    model, reinit = _build(config, config.variant, num_classes, input_size, None, precision)
    phase = plan_phases(config, get_arch(config.variant), tuple(reinit))[0]
    _set_trainable(model, phase)
    return model, PhaseStep(model, phase, config, LossScale(precision.name == "fp16"))


def train_run(config: RunConfig, ctx: RunContext, stores: dict, bundle, augment_spec, normalisation) -> dict:
    """train.trainer_registry' entry point for Keras; also records the Keras backend, the distribution
    strategy and its replicas, and the checkpoint suffix."""
    device = resolve_device(config.device)
    distribution = resolve_distribution(config.distribute, device)  # before TensorFlow computes anything
    _seed(config.seed)
    if config.deterministic:
        _deterministic()
    precision = resolve_precision(config.precision, device)
    with distribution.scope() if distribution is not None else contextlib.nullcontext():
        model, reinit = build_for_training(config, ctx, bundle, precision)
        conv1 = initial_conv1(config, stores, get_arch(ctx.meta.variant), normalisation, ctx.meta.input_size)
        if conv1 is not None:
            from_canonical(model, conv1, partial=True)
    phases = plan_phases(config, get_arch(ctx.meta.variant), tuple(reinit))
    crop, split = ctx.meta.input_size, distribution.distribute_dataset if distribution is not None else None
    trainer = KerasTrainer(model, StorePipeline(*stores["train"], crop, normalisation, augment_spec, config.seed, split),
                           StorePipeline(*stores["val"], crop, normalisation), config,
                           LossScale(precision.name == "fp16"), distribution)
    backend = keras.backend.backend()
    resolved = {"device": device, "precision": precision.name, "keras_backend": backend,
                "reinitialised_layers": list(reinit), "phases": [p.name for p in phases], "checkpoint_suffix": SUFFIX,
                "distribute": {"strategy": "none", "replicas": 1} if distribution is None else distribution.resolved()}
    log.info("training on %s (%s, Keras on %s), phases %s", device, precision.name, backend,
             ", ".join(f"{p.name}x{p.epochs}" for p in phases))
    if distribution is not None:
        log.info("tf.distribute: %s, %d replica(s) on %s", distribution.name, resolved["distribute"]["replicas"],
                 ", ".join(distribution.devices))
        if distribution.is_chief != ctx.writer:  # both read TF_CONFIG (train.launch_env); they cannot disagree
            raise TrainingError("the chief in TF_CONFIG is not the process writing the run folder; check TF_CONFIG.")
    fit(trainer, config, phases, ctx, trainer.val.labels)
    return resolved
