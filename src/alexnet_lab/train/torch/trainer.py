"""The PyTorch half of training: model, optimizer, autocast step, uint8-store loader (in-memory,
streamed or memory-mapped: see train.image_stores), DDP and
the checkpoint file, as the :class:`~alexnet_lab.train.loop.FrameworkTrainer` that the one loop
(train/loop.py) drives. Started by torchrun it trains with DistributedDataParallel (see
.distributed); rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alexnet_lab.data.remote_shards import shard_groups
from alexnet_lab.data.stream import StreamedImages, select
from alexnet_lab.frameworks.torch.convert import from_canonical, to_canonical
from alexnet_lab.frameworks.torch.device import resolve_device, resolve_precision, use_channels_last, use_compile
from alexnet_lab.frameworks.torch.model import build_and_load
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.context import RunContext
from alexnet_lab.train.launch_env import World
from alexnet_lab.train.loop import fit
from alexnet_lab.train.phases import Phase, plan_phases
from alexnet_lab.train.torch import distributed
from alexnet_lab.train.torch.checkpoint import cpu_state, load_checkpoint, write_checkpoint
from alexnet_lab.train.torch.data import (
    IGNORE,
    Normaliser,
    ShardBatches,
    StoreDataset,
    loader_workers,
    make_loader,
    step_threads,
)
from alexnet_lab.train.torch.ema import TorchEMA
from alexnet_lab.train.whitening import initial_conv1

log = logging.getLogger(__name__)


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


class TorchTrainer:
    """One run's PyTorch state; the methods are train.loop.FrameworkTrainer's."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision, normaliser: Normaliser,
                 train_set: StoreDataset, val_set: StoreDataset, config: RunConfig, world: World = World(),
                 compile: bool = False):
        self.model, self.device, self.precision, self.normaliser = model, device, precision, normaliser
        self.train_set, self.val_set, self.config, self.world = train_set, val_set, config, world
        self.compile = compile  # torch.compile the training forward (the model itself stays eager for saving)
        self.workers = loader_workers(config.num_workers, train_set.images)
        self.train_size = len(train_set)
        self.epoch_images = world.share(len(train_set))
        # the same for every process: the sampler pads the last share
        self.steps_per_epoch = math.ceil(self.epoch_images / world.split_batch(config.batch_size))
        # streamed remote shards: batches by shard, each loader worker streaming its own (ShardBatches)
        self.groups = shard_groups(train_set.images.paths) if isinstance(train_set.images, StreamedImages) else None
        if self.groups is not None:
            self.steps_per_epoch = len(ShardBatches(self.groups, world.split_batch(config.batch_size), world.rank,
                                                    world.size, self.workers, config.seed, 0))
        self.net: torch.nn.Module = model
        self.ema = TorchEMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.evaluated = self.ema.model if self.ema is not None else model  # what validation and saving use
        self.optimizer: torch.optim.Optimizer | None = None
        self.phase: Phase | None = None

    def resume_path(self, ctx: RunContext) -> Path | None:
        return ctx.resume_checkpoint

    def checkpoint_file(self, ctx: RunContext, kind: str) -> Path:
        return ctx.checkpoint_path(kind)

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        return state

    def after_resume(self, start_epoch: int) -> None:
        pass  # torchrun's processes all read the same checkpoint

    def start_phase(self, phase: Phase, optimizer_state: dict[str, Any] | None) -> None:
        self.phase = phase
        _set_trainable(self.model, phase)
        self.optimizer = build_optimizer(self.model, phase, self.config)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state["optimizer"])
        self.net = distributed.wrap(self.model, self.world, self.device)
        if self.compile:  # compiles on the first batch; a new phase's trainable set recompiles anyway
            self.net = _compiled(self.net, self.config.deterministic)

    def batches(self, epoch: int):
        self.net.train()
        _frozen_bn_eval(self.model, self.phase)
        distributed.seed_epoch(self.config.seed, epoch, self.world)
        return make_loader(self.train_set, self.world.split_batch(self.config.batch_size), True, self.config.seed,
                           epoch, self.workers, pin_memory=self.device.type == "cuda", world=self.world,
                           groups=self.groups)

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

    def all_sum(self, values):
        return distributed.all_sum(list(values), self.world)

    def after_epoch(self) -> None:
        distributed.sync_buffers(self.model, self.world)
        if self.ema is not None:  # each process averaged its own statistics: rank 0's for all
            distributed.sync_buffers(self.ema.model, self.world)

    @torch.no_grad()
    def predict_store(self, dataset: StoreDataset, batch_size: int, mirrored: bool = False) -> np.ndarray:
        """Logits of the evaluated model (the average with --ema-decay) for a whole store, in order
        (eval mode, no augmentation); `mirrored`: of the images' mirror images."""
        model = self.evaluated.eval()
        out = []
        for images, _ in make_loader(dataset, batch_size, False, 0, 0, self.workers):
            x = self.normaliser(images)
            with self.precision.autocast(self.device):
                out.append(model(x.flip(3) if mirrored else x).float().cpu().numpy())  # NCHW: 3 is the width
        return np.concatenate(out)

    def val_logits(self, batch_size: int, mirrored: bool = False) -> np.ndarray:
        """Each process predicts its shard of the validation store; all get the whole."""
        part, val = distributed.shard(len(self.val_set), self.world), self.val_set
        mine = StoreDataset(select(val.images, part), val.labels[part], val.crop, None)
        return distributed.gather_rows(self.predict_store(mine, batch_size, mirrored), self.world)

    def agree(self, values: list[float]) -> list[float]:
        return values  # every process computed them from the same gathered logits

    def checkpoint_state(self, state: dict[str, Any]) -> dict[str, Any]:
        ema = {} if self.ema is None else {"ema": self.ema.state_dict()}
        return {"model": cpu_state(self.model), **state, "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), **ema}

    def write_checkpoint(self, tmp: Path, state: dict[str, Any]) -> None:
        write_checkpoint(state, tmp)

    def to_canonical(self) -> dict[str, np.ndarray]:
        return to_canonical(self.evaluated)


def train_run(config: RunConfig, ctx: RunContext, stores: dict, bundle, augment_spec, normalisation) -> dict:
    """train.trainer_registry' entry point for PyTorch; also records channels-last, torch.compile, the
    world size and the process-group backend."""
    torch.manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    world = ctx.world  # train.job read it once (torchrun's environment) for the whole run
    device = distributed.start(world, resolve_device(config.device))
    precision = resolve_precision(config.precision, device)
    channels_last = use_channels_last(config.channels_last, device)
    meta = ctx.meta
    model, reinit = build_and_load(meta.variant, meta.num_classes, config.dropout, meta.input_size, weights=bundle,
                                   skip_layers=config.skip_layers)  # the framework's one build route
    if (conv1 := initial_conv1(config, stores, model.spec, normalisation, meta.input_size)) is not None:
        from_canonical(model, conv1, partial=True)
    phases = plan_phases(config, model.spec, tuple(reinit))
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    crop = meta.input_size
    trainer = TorchTrainer(model, device, precision, Normaliser(*normalisation, device, channels_last),
                           StoreDataset(*stores["train"], crop, augment_spec, config.seed),
                           StoreDataset(*stores["val"], crop, None), config, world, use_compile(config.compile, device))
    resolved = {"device": str(device), "precision": precision.name, "channels_last": channels_last,
                "compile": trainer.compile,
                "reinitialised_layers": reinit, "phases": [p.name for p in phases],
                "world_size": world.size, "loader_workers": trainer.workers, "dist_backend": distributed.backend_name(world),
                "intra_op_threads": step_threads(trainer.workers, trainer.train_set.images, device,
                                                     world.size)}
    log.info("training on %s (%s%s), phases %s", device, precision.name, ", torch.compile" if trainer.compile else "",
             ", ".join(f"{p.name}x{p.epochs}" for p in phases))
    try:
        fit(trainer, config, phases, ctx, trainer.val_set.labels)
    finally:
        distributed.stop(world)
    return resolved

