"""The PyTorch half of training: the step (.step: model, optimizer, autocast), uint8-store loader (in-memory,
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

from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.data.remote_shards import shard_groups
from alexnet_lab.data.stream import StreamedImages, select
from alexnet_lab.frameworks.torch.convert import from_canonical, to_canonical
from alexnet_lab.frameworks.torch.device import resolve_device
from alexnet_lab.frameworks.torch.model import build_and_load
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.context import RunContext
from alexnet_lab.train.launch_env import World
from alexnet_lab.train.loop import fit
from alexnet_lab.train.phases import plan_phases
from alexnet_lab.train.torch import distributed
from alexnet_lab.train.torch.checkpoint import cpu_state, load_checkpoint, write_checkpoint
from alexnet_lab.train.torch.data import (
    Normaliser,
    ShardBatches,
    StoreDataset,
    dead_worker_error,
    loader_workers,
    make_loader,
    step_threads,
)
from alexnet_lab.train.torch.step import (  # noqa: F401  build_optimizer: also importable from here
    TorchStep,
    build_optimizer,
    resolve_setup,
)
from alexnet_lab.train.whitening import initial_conv1

log = logging.getLogger(__name__)


class TorchTrainer(TorchStep):
    """One run's PyTorch state: the step (.step) with its data, DDP and checkpoints; the methods are
    train.loop.FrameworkTrainer's."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision, normaliser: Normaliser,
                 train_set: StoreDataset, val_set: StoreDataset, config: RunConfig, world: World = World(),
                 compile: bool = False):
        super().__init__(model, device, precision, normaliser, config, world, compile)
        self.train_set, self.val_set = train_set, val_set
        self.workers = loader_workers(config.num_workers, train_set.images, device, world.size)
        self.train_size = len(train_set)
        self.epoch_images = world.share(len(train_set))
        # the same for every process: the sampler pads the last share
        self.steps_per_epoch = math.ceil(self.epoch_images / world.split_batch(config.batch_size))
        # streamed remote shards: batches by shard, each loader worker streaming its own (ShardBatches)
        self.groups = shard_groups(train_set.images.paths) if isinstance(train_set.images, StreamedImages) else None
        if self.groups is not None:
            self.steps_per_epoch = len(ShardBatches(self.groups, world.split_batch(config.batch_size), world.rank,
                                                    world.size, self.workers, config.seed, 0))

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        return state

    def after_resume(self, start_epoch: int) -> None:
        pass  # torchrun's processes all read the same checkpoint

    def batches(self, epoch: int):
        self.train_mode()
        distributed.seed_epoch(self.config.seed, epoch, self.world)
        return make_loader(self.train_set, self.world.split_batch(self.config.batch_size), True, self.config.seed,
                           epoch, self.workers, pin_memory=self.device.type == "cuda", world=self.world,
                           groups=self.groups)

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
    setup = resolve_setup(config, device)  # the step's precision, layout and compilation, as build_step's
    precision, channels_last = setup.precision, setup.channels_last
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
                           StoreDataset(*stores["val"], crop, None), config, world, setup.compile)
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
    except RuntimeError as exc:
        if (error := dead_worker_error(exc, ctx.run_dir, RunFolder(ctx.run_dir).has_last_checkpoint())) is None:
            raise
        raise error from None
    finally:
        distributed.stop(world)
    return resolved

