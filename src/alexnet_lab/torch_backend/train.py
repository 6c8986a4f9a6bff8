"""The PyTorch training loop: phases, per-layer learning rates, checkpoints every epoch, resume.

The framework-neutral parts (config, phases, schedules, data splits, run folder, metrics log)
live in alexnet_lab.train; this module only does what needs torch. Started by torchrun it trains
with DistributedDataParallel (see .distributed); rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alexnet_lab.core.errors import TrainingError
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.runlog import RunContext
from alexnet_lab.train.schedules import lr_factor
from alexnet_lab.train.strategies import Phase, phase_at
from alexnet_lab.torch_backend import distributed
from alexnet_lab.torch_backend.checkpoint import cpu_state, load_checkpoint, write_checkpoint
from alexnet_lab.torch_backend.convert import to_canonical
from alexnet_lab.torch_backend.data import Normaliser, StoreDataset, make_loader
from alexnet_lab.torch_backend.device import resolve_device, resolve_precision, use_channels_last, use_compile
from alexnet_lab.train.world import World

log = logging.getLogger(__name__)


@dataclass
class Setup:
    model: torch.nn.Module
    device: torch.device
    precision: object
    normaliser: Normaliser
    train_set: StoreDataset
    val_set: StoreDataset
    world: World = World()
    compile: bool = False  # torch.compile the training forward (the model itself stays eager for saving)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps per epoch: the same for every process (the sampler pads the last share)."""
        return math.ceil(self.world.share(len(self.train_set)) / self.world.split_batch(batch_size))


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



def train_epoch(setup: Setup, net, optimizer, config: RunConfig, phase: Phase, phase_step: int, steps_per_epoch: int,
                epoch: int, ctx: RunContext) -> tuple[dict, int]:
    """One pass over this process's share of the training store through `net` (the model, or
    DDP around it); returns (train metrics summed over all processes and lr, phase step after it)."""
    model, device, world = setup.model, setup.device, setup.world
    net.train()
    _frozen_bn_eval(model, phase)
    distributed.seed_epoch(config.seed, epoch, world)
    loader = make_loader(setup.train_set, world.split_batch(config.batch_size), True, config.seed,
                         epoch, config.num_workers, pin_memory=device.type == "cuda", world=world)
    total_steps = phase.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)
    loss_sum, correct, seen = 0.0, 0, 0
    with ctx.progress(total=world.share(len(setup.train_set)), desc=f"epoch {epoch + 1}/{config.epochs} [{phase.name}]") as bar:
        for images, labels in loader:
            factor = lr_factor(phase_step, total_steps, config.schedule, warmup, config.step_epochs * steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * factor
            x, y = setup.normaliser(images), labels.to(device, non_blocking=True)
            with setup.precision.autocast(device):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.grad_clip)
            optimizer.step()
            phase_step += 1
            loss_value = float(loss.detach())
            loss_sum += loss_value * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(len(y))
            if not math.isfinite(loss_value):
                raise TrainingError(f"the loss became {loss_value} at epoch {epoch + 1}; lower --lr or add --grad-clip.")
    lr_now = optimizer.param_groups[-1]["lr"]
    loss_sum, correct, seen = distributed.all_sum([loss_sum, correct, seen], world)
    return {"train_loss": loss_sum / seen, "train_top1": correct / seen, "lr": lr_now}, phase_step


@torch.no_grad()
def predict_store(setup: Setup, dataset: StoreDataset, batch_size: int) -> np.ndarray:
    """Logits for a whole store, in order (eval mode, no augmentation)."""
    setup.model.eval()
    loader = make_loader(dataset, batch_size, False, 0, 0, 0)
    out = []
    for images, _ in loader:
        with setup.precision.autocast(setup.device):
            out.append(setup.model(setup.normaliser(images)).float().cpu().numpy())
    return np.concatenate(out)


def _val_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    return {"val_loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
            "val_top1": float((top[:, 0] == labels).mean()), "val_top5": float((top == labels[:, None]).any(1).mean())}


def _checkpoint_state(setup, optimizer, ctx: RunContext, epoch, phase_index, phase_step) -> dict:
    return {"model": cpu_state(setup.model), "alexnet_lab": ctx.meta.to_metadata(), "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1, "phase": phase_index, "phase_step": phase_step, "best": ctx.best,
            "best_epoch": ctx.best_epoch, "history": ctx.history, "torch_rng": torch.get_rng_state()}


def _val_logits(setup: Setup, batch_size: int) -> np.ndarray:
    """Validation logits for the whole store: each process predicts its shard, all get the whole."""
    part = distributed.shard(len(setup.val_set), setup.world)
    val = setup.val_set
    mine = StoreDataset(val.images[part], val.labels[part], val.crop, None)
    return distributed.gather_rows(predict_store(setup, mine, batch_size), setup.world)


def _compiled(net, deterministic: bool):
    """torch.compile around the training forward. Compiled dropout draws its masks from inductor's
    own generator unless told to use torch's: --deterministic does, so a seeded compiled run draws
    the same masks as an eager one."""
    if deterministic:
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True
    return torch.compile(net)


def _resume(model, ctx: RunContext, total_epochs: int) -> tuple[int, dict | None]:
    """(start epoch, checkpoint state) from the run's last checkpoint, digest-checked, with the
    best files repaired from it when a kill left them behind; (0, None) for a fresh start."""
    if ctx.resume_checkpoint is None:
        return 0, None
    ctx.verify_checkpoint(ctx.resume_checkpoint)
    state = load_checkpoint(ctx.resume_checkpoint)
    model.load_state_dict(state["model"])
    start_epoch = int(state["epoch"])
    torch.set_rng_state(state["torch_rng"])
    ctx.restore(state["history"], state["best"], state.get("best_epoch"))
    ctx.repair_best(ctx.resume_checkpoint, ctx.checkpoint_path("best"), start_epoch, lambda: to_canonical(model))
    log.info("resuming at epoch %d of %d", start_epoch + 1, total_epochs)
    return start_epoch, state


def fit(setup: Setup, config: RunConfig, phases: list[Phase], ctx: RunContext) -> None:
    """Train through all phases, resuming from ctx's last checkpoint when there is one.

    The schedule position is recomputed from the epoch (not carried over from the checkpoint), so a
    run resumed with another number of processes keeps its learning-rate schedule.
    """
    model, world = setup.model, setup.world
    steps_per_epoch = setup.steps_per_epoch(config.batch_size)
    total_epochs = sum(p.epochs for p in phases)
    start_epoch, resume_state = _resume(model, ctx, total_epochs)
    optimizer, net, current = None, model, -1
    for epoch in range(start_epoch, total_epochs):
        phase_index = phase_at(phases, epoch)
        phase = phases[phase_index]
        if phase_index != current:
            _set_trainable(model, phase)
            optimizer = build_optimizer(model, phase, config)
            if resume_state is not None and int(resume_state["phase"]) == phase_index and epoch == start_epoch:
                optimizer.load_state_dict(resume_state["optimizer"])
            net = distributed.wrap(model, world, setup.device)
            if setup.compile:  # compiles on the first batch; a new phase's trainable set recompiles anyway
                net = _compiled(net, config.deterministic)
            current = phase_index
        phase_step = (epoch - sum(p.epochs for p in phases[:phase_index])) * steps_per_epoch
        started = time.perf_counter()
        row, phase_step = train_epoch(setup, net, optimizer, config, phase, phase_step, steps_per_epoch, epoch, ctx)
        distributed.sync_buffers(model, world)
        row.update(_val_metrics(_val_logits(setup, config.batch_size * 2), setup.val_set.labels))
        seconds = time.perf_counter() - started
        row.update({"epoch": epoch + 1, "phase": phase.name, "epoch_seconds": seconds,
                    "images_per_second": len(setup.train_set) / seconds})
        improved = ctx.record(row)
        if ctx.writer:
            state = _checkpoint_state(setup, optimizer, ctx, epoch, phase_index, phase_step)
            ctx.commit_pair(ctx.checkpoint_path("last"), ctx.checkpoint_path("best"),
                            lambda tmp: write_checkpoint(state, tmp), epoch + 1, improved, lambda: to_canonical(model))
        ctx.commit_epoch(row)
        if ctx.should_stop(config.early_stopping):
            log.info("early stopping: no val top-1 gain for %d epochs", config.early_stopping)
            break
    ctx.save_model(to_canonical(model), "last")


def train_run(config: RunConfig, ctx: RunContext, stores: dict, bundle, augment_spec, normalisation) -> dict:
    """Build the model (loading pretrained weights when given), plan the phases and fit.

    Args:
        stores: {'train': (images, labels), 'val': (images, labels)} uint8 stores.
        bundle: pretrained WeightBundle or None.
        augment_spec: AugmentSpec for training views.
        normalisation: (scale, offset, bgr) from train.datasets.normalisation.
    Returns:
        What was resolved at run time (device, precision, re-initialised layers) for the config record.
    """
    from alexnet_lab.pretrained import load_pretrained
    from alexnet_lab.torch_backend.model import build_model
    from alexnet_lab.train.strategies import plan_phases

    torch.manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    world = ctx.world  # train.run read it once (torchrun's environment) for the whole run
    device = distributed.start(world, resolve_device(config.device))
    precision = resolve_precision(config.precision, device)
    channels_last = use_channels_last(config.channels_last, device)
    meta = ctx.meta
    model = build_model(meta.variant, meta.num_classes, config.dropout, input_size=meta.input_size)
    reinit: list[str] = []
    if bundle is not None:
        reinit = load_pretrained(model, "torch", bundle, meta.num_classes, config.skip_layers)
    phases = plan_phases(config, model.spec, tuple(reinit))
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    crop = meta.input_size
    setup = Setup(model, device, precision, Normaliser(*normalisation, device, channels_last),
                  StoreDataset(*stores["train"], crop, augment_spec, config.seed), StoreDataset(*stores["val"], crop, None),
                  world, use_compile(config.compile, device))
    resolved = {"device": str(device), "precision": precision.name, "channels_last": channels_last,
                "compile": setup.compile,
                "reinitialised_layers": reinit, "phases": [p.name for p in phases],
                "world_size": world.size, "dist_backend": distributed.backend_name(world)}
    log.info("training on %s (%s%s), phases %s", device, precision.name, ", torch.compile" if setup.compile else "",
             ", ".join(f"{p.name}x{p.epochs}" for p in phases))
    try:
        fit(setup, config, phases, ctx)
    finally:
        distributed.stop(world)
    return resolved

