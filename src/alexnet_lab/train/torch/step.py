"""The PyTorch training step and what it runs under: the device's precision, layout and
torch.compile resolved from a RunConfig, a phase's per-layer optimizer, and one step (autocast
forward, cross-entropy, clipping, update, EMA). :class:`.trainer.TorchTrainer` adds the data,
DDP and checkpoints around it; `alexnet benchmark` times this same step (:func:`build_step`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alexnet_lab.frameworks.torch.device import Precision, resolve_precision, use_channels_last, use_compile
from alexnet_lab.frameworks.torch.model import build_and_load
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.launch_env import World
from alexnet_lab.train.phases import Phase, plan_phases
from alexnet_lab.train.torch import distributed
from alexnet_lab.train.torch.data import IGNORE, Normaliser
from alexnet_lab.train.torch.ema import TorchEMA


@dataclass(frozen=True)
class StepSetup:
    """What --precision, --channels-last and --compile resolve to on one device."""

    precision: Precision
    channels_last: bool
    compile: bool


def resolve_setup(config: RunConfig, device: torch.device) -> StepSetup:
    """The step's precision, layout and compilation as `alexnet train` resolves them on `device`."""
    return StepSetup(resolve_precision(config.precision, device), use_channels_last(config.channels_last, device),
                     use_compile(config.compile, device))


def _set_trainable(model, phase: Phase) -> None:
    trainable = set(phase.trainable)
    for name in model.spec.layer_names + model.spec.bn_names:
        layer = model.layer(name)
        for param in layer.parameters():
            param.requires_grad_(name in trainable)


def _frozen_bn_eval(model, phase: Phase) -> None:
    """Frozen BatchNorm layers keep their statistics: eval mode stops the running-mean update."""
    for bn in model.spec.bn_names:
        if bn not in phase.trainable:
            model.layer(bn).eval()


def build_optimizer(model, phase: Phase, config: RunConfig) -> torch.optim.Optimizer:
    """One parameter group per layer (its own lr); weight decay on weights only."""
    groups = []
    for name, lr in phase.layer_lrs:
        layer = model.layer(name)
        decay = config.weight_decay if not name.startswith("bn") else 0.0
        groups.append({"params": [layer.weight], "lr": lr, "peak_lr": lr, "weight_decay": decay, "layer": name})
        groups.append({"params": [layer.bias], "lr": lr, "peak_lr": lr, "weight_decay": 0.0, "layer": name})
    # foreach: one vectorised update per group instead of a Python loop over tensors
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), foreach=True)
    return torch.optim.SGD(groups, momentum=config.momentum, nesterov=config.momentum > 0, foreach=True)


def _compiled(net, deterministic: bool):
    """torch.compile around the training forward. Compiled dropout draws its masks from inductor's
    own generator unless told to use torch's: --deterministic does, so a seeded compiled run draws
    the same masks as an eager one."""
    if deterministic:
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True
    return torch.compile(net)


class TorchStep:
    """A model, its optimizer for the current phase and the training step on uint8 NHWC batches."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision, normaliser: Normaliser,
                 config: RunConfig, world: World = World(), compile: bool = False):
        self.model, self.device, self.precision, self.normaliser = model, device, precision, normaliser
        self.config, self.world = config, world
        self.compile = compile  # torch.compile the training forward (the model itself stays eager for saving)
        self.net: torch.nn.Module = model
        self.ema = TorchEMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.evaluated = self.ema.model if self.ema is not None else model  # what validation and saving use
        self.optimizer: torch.optim.Optimizer | None = None
        self.phase: Phase | None = None

    def start_phase(self, phase: Phase, optimizer_state: dict | None) -> None:
        self.phase = phase
        _set_trainable(self.model, phase)
        self.optimizer = build_optimizer(self.model, phase, self.config)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state["optimizer"])
        self.net = distributed.wrap(self.model, self.world, self.device)
        if self.compile:  # compiles on the first batch; a new phase's trainable set recompiles anyway
            self.net = _compiled(self.net, self.config.deterministic)

    def train_mode(self) -> None:
        """Training mode, except the BatchNorm layers the phase freezes."""
        self.net.train()
        _frozen_bn_eval(self.model, self.phase)

    def step(self, images: torch.Tensor, labels: torch.Tensor, lr_factor: float) -> tuple[float, int, int]:
        for group in self.optimizer.param_groups:
            group["lr"] = group["peak_lr"] * lr_factor
        x, y = self.normaliser(images), labels.to(self.device, non_blocking=True)
        with self.precision.autocast(self.device):
            logits = self.net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)  # skips IGNORE
        count = len(y) if not self.world.distributed else int((y != IGNORE).sum())
        if count == 0:  # a batch of EpochShares padding only: a zero loss, so DDP still all-reduces
            loss = logits.float().sum() * 0.0
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                           self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        return float(loss.detach()), int((logits.argmax(1) == y).sum()), count


def build_step(config: RunConfig, num_classes: int, input_size: int,
               normalisation: tuple[np.ndarray, np.ndarray, bool], device: torch.device) -> TorchStep:
    """The step `alexnet train` runs for `config` on `device`, on a fresh model (no weights, no run
    folder, no data), in training mode in its first phase: what `alexnet benchmark` times."""
    setup = resolve_setup(config, device)
    model, reinit = build_and_load(config.variant, num_classes, config.dropout, input_size)  # the one build route
    phase = plan_phases(config, model.spec, tuple(reinit))[0]
    model = model.to(device, memory_format=torch.channels_last if setup.channels_last else torch.contiguous_format)
    step = TorchStep(model, device, setup.precision, Normaliser(*normalisation, device, setup.channels_last), config,
                     compile=setup.compile)
    step.start_phase(phase, None)
    step.train_mode()
    return step
