"""DistributedDataParallel on torch.distributed, for runs started by torchrun.

One process per device (or per CPU share): gloo on CPU, nccl on CUDA. Every process holds the
whole model and a 1/world share of each epoch (train.torch.data.EpochShares); DDP averages the gradients,
so with the global batch split evenly the update equals one process's update on the whole batch.
Validation is sharded too and the logits gathered, so every process sees the same metrics and
takes the same best-epoch and early-stopping decisions.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from alexnet_lab.train.launch_env import World

log = logging.getLogger(__name__)


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (from torchrun's environment); returns this process's device."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    log.info("distributed: %d processes (%s), rank 0 writes the run folder", world.size, backend)
    return device


def stop(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def backend_name(world: World) -> str | None:
    return dist.get_backend() if world.distributed and dist.is_initialized() else None


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP around the model for one phase (its trainable set is fixed at construction)."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sync_buffers(model: torch.nn.Module, world: World) -> None:
    """Give every process rank 0's BatchNorm statistics. DDP broadcasts them at the start of each
    forward, so after the last training step each process holds its own update; validation and
    the saved model must use the same ones."""
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum of per-process numbers (in float64)."""
    if not world.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def shard(count: int, world: World) -> slice:
    """This process's contiguous share of `count` items (shares differ in size by at most one)."""
    bounds = np.linspace(0, count, world.size + 1).round().astype(int)
    return slice(int(bounds[world.rank]), int(bounds[world.rank + 1]))


def gather_rows(rows: np.ndarray, world: World) -> np.ndarray:
    """Concatenate every process's rows in rank order (each process gets the whole array)."""
    if not world.distributed:
        return rows
    parts: list = [None] * world.size
    dist.all_gather_object(parts, rows)
    return np.concatenate(parts)


def seed_epoch(seed: int, epoch: int, world: World) -> None:
    """Distinct, reproducible dropout randomness per process and epoch (a resumed run repeats it)."""
    if world.distributed:
        torch.manual_seed(int(np.random.SeedSequence([seed, epoch, world.rank]).generate_state(1)[0]))
