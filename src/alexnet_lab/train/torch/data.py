"""PyTorch input pipeline over the uint8 store: augmentation per sample (numpy, seeded per epoch
and index so any worker count gives the same batches), normalisation on the batch.

The store is an in-memory array, a StreamedImages (data.stream) that decodes each sample in the
DataLoader worker that asks for it (in the training process itself on a small CPU: loader_workers),
or the decoded cache's CachedImages (data.ragged), whose random-resized-crop views are cut from the
whole stored image the same way; under torchrun :class:`EpochShares` (a
DistributedSampler without the repeats) gives every process its own part of the (seed, epoch)
permutation, and the DataLoader deals that part's batches out to its workers, so each sample of
an epoch is read exactly once, by one worker of one process (tests/unit/test_data_streaming.py)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from alexnet_lab.core.errors import AlexnetLabError, TrainingError
from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.datasets import default_workers, eval_view, train_view
from alexnet_lab.data.ragged import CachedImages
from alexnet_lab.data.remote_shards import epoch_shard_order, slot_plan
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.data.train_views import uses_whole_image
from alexnet_lab.train.folder import FAULT_ENV, fault_point

IGNORE = -100  # F.cross_entropy's default ignore_index: the label of a padding sample
WHOLE_IMAGE_STORES = (StreamedImages, CachedImages)  # stores that cut training views from the whole image, per sample


class EpochShares(Sampler[int]):
    """This process's share of the epoch: every `size`-th item of the (seed, epoch) permutation,
    from position `rank`. Shares are padded to one length (DDP steps in lockstep) with markers
    `index + count`, which StoreDataset reads with label IGNORE so the loss skips them: unlike
    DistributedSampler's padding, no sample is trained on twice in an epoch."""

    def __init__(self, count: int, rank: int, size: int, seed: int, epoch: int, shuffle: bool = True):
        self.count, self.rank, self.size, self.seed, self.epoch, self.shuffle = count, rank, size, seed, epoch, shuffle

    def __len__(self) -> int:
        return -(-self.count // self.size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        # the draw a single-process DataLoader makes first (its workers' base seed), so that the
        # permutation is the single-process one, dealt out: any process count, one global order
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        order = torch.randperm(self.count, generator=generator) if self.shuffle else torch.arange(self.count)
        mine = order[self.rank :: self.size].tolist()
        return iter(mine + [int(order[0]) + self.count] * (len(self) - len(mine)))


class ShardBatches(Sampler[list[int]]):
    """This process's batches over streamed shards (data.remote_shards): the shards are dealt once
    to the job's readers (rank x loader worker, data.remote_shards.slot_plan), each reader's batches
    hold its own shards' samples in stream order (its shards shuffled per (seed, epoch)), and the
    batches are interleaved the way the DataLoader deals them to its workers, so each worker streams
    only its shards. Under torchrun every process's list is padded to the longest with
    EpochShares' markers (label IGNORE) on a sample the same worker has just read."""

    def __init__(self, groups: list[list[int]], batch_size: int, rank: int, size: int, workers: int, seed: int,
                 epoch: int, shuffle: bool = True):
        self.groups, self.batch_size, self.rank, self.size = groups, batch_size, rank, size
        self.workers, self.seed, self.epoch, self.shuffle = max(1, workers), seed, epoch, shuffle
        self.count = sum(len(group) for group in groups)
        self.plan = slot_plan([len(group) for group in groups], size * self.workers)

    def _batches(self, rank: int) -> list[list[int]]:
        per_worker = []
        for slot in range(rank * self.workers, (rank + 1) * self.workers):
            shards = epoch_shard_order(self.plan[slot], self.seed, self.epoch, slot) if self.shuffle else self.plan[slot]
            positions = [position for shard in shards for position in self.groups[shard]]
            per_worker.append([positions[i : i + self.batch_size] for i in range(0, len(positions), self.batch_size)])
        rounds = max(len(batches) for batches in per_worker)
        return [batches[j] for j in range(rounds) for batches in per_worker if j < len(batches)]

    def __len__(self) -> int:
        return max(len(self._batches(rank)) for rank in range(self.size))

    def __iter__(self):
        mine, length = self._batches(self.rank), len(self)
        own = len(mine)
        for i in range(own, length):  # padding: the worker this batch goes to has just read `last`
            last = next((mine[k][-1] for k in range(i - self.workers, -1, -self.workers) if k < own), 0)
            mine.append([last + self.count] * self.batch_size)
        return iter(mine)


# Cores per process up to which CPU training decodes in its own process. Decoding between steps costs
# the step a share of its time that grows with the step's speed; a worker takes one of the C cores
# from the step (or contends with its OpenMP threads for it). The measurement and the cost model:
# docs/performance.md#workers-and-threads-on-the-cpu.
INLINE_DECODE_MAX_CORES = 4


def loader_workers(requested: int, images, device: torch.device, world_size: int = 1) -> int:
    """--num-workers, or for a streamed or cached store left at 0: on a CPU with at most
    INLINE_DECODE_MAX_CORES cores per process none (the training process decodes between steps and
    its step keeps the process's cores; not when OMP_NUM_THREADS fixes the step's threads, as
    torchrun does), else one worker per spare core (up to 4), so that decoding never waits on the step."""
    if requested or not isinstance(images, WHOLE_IMAGE_STORES):
        return requested
    inline = (os.cpu_count() or 1) // max(1, world_size) <= INLINE_DECODE_MAX_CORES
    if device.type == "cpu" and inline and not os.environ.get("OMP_NUM_THREADS"):  # torchrun sets it: keep workers
        return 0
    return max(1, default_workers())


def step_threads(workers: int, images, device, world_size: int = 1) -> int:
    """Intra-op threads for the training step: on the CPU, with workers decoding a streamed store,
    the cores they leave (each decodes on one core: DataLoader sets one thread in its workers), so the step's OpenMP
    pool never spin-waits on a core a worker holds; decoding in the process itself, its share of the
    cores (all of them for one process: torch's default is kept). An in-memory store (CIFAR-10) keeps
    torch's default; OMP_NUM_THREADS, when set, wins. Sets and returns the step's thread count."""
    decoding = (workers > 0 or world_size > 1) and isinstance(images, WHOLE_IMAGE_STORES)
    if device.type == "cpu" and decoding and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, world_size) - workers))
    return torch.get_num_threads()


class StoreDataset(Dataset):
    """(uint8 HxWx3 view, label) pairs from an in-memory store."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, crop: int, augment: AugmentSpec | None, seed: int = 0):
        self.images, self.labels, self.crop, self.augment, self.seed = images, labels, crop, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        if FAULT_ENV in os.environ and get_worker_info() is not None:
            fault_point("loader-worker", self.epoch + 1)  # tests: a worker killed as the system would
        label = IGNORE if index >= len(self) else None  # EpochShares' padding marker
        index = index % len(self)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.augment is None:
            view = eval_view(self.images[index], self.crop)
        elif uses_whole_image(self.augment) and isinstance(self.images, WHOLE_IMAGE_STORES):
            view = self.images.train_view(index, self.augment, self.crop, rng, resized_crop_uint8)
        else:
            view = train_view(self.images[index], self.augment, self.crop, rng)
        return torch.from_numpy(view), int(self.labels[index]) if label is None else label


def resized_crop_uint8(pixels: np.ndarray, box: tuple[int, int, int, int], size: int, flip: bool = False) -> np.ndarray:
    """torch's antialiased bilinear resize on uint8 (the SIMD kernel torchvision.transforms.v2 calls;
    about 1.5x PIL's, docs/performance.md), then the flip: within a grey level of the numpy reference."""
    top, left, height, width = box
    crop = torch.from_numpy(np.ascontiguousarray(pixels[top : top + height, left : left + width]))
    # a contiguous HWC crop is a channels-last NCHW tensor: the kernel's fast layout, kept in its output
    out = F.interpolate(crop.permute(2, 0, 1)[None], size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False)[0].permute(1, 2, 0)
    return (out.flip(1) if flip else out).numpy()


def dead_worker_error(exc: BaseException, run_dir, resumable: bool) -> TrainingError | None:
    """One line for a loader worker that died (DataLoader raises it from wherever the training
    process is when it notices, often the backward pass); None for any other error. `resumable`:
    the run has a last checkpoint (else its folder is rolled back and the command runs again)."""
    message = str(exc).strip()
    if not (isinstance(exc, RuntimeError) and message.startswith("DataLoader worker")):
        return None
    again = (f"The run keeps its last checkpoint: continue it with `alexnet train --resume --out '{run_dir}'`"
             if resumable else "No epoch had finished: run the same command again")
    return TrainingError(f"a data loader worker died ({message.rstrip('. ')}); a worker killed by the system usually "
                         f"means memory ran short. {again}, with fewer --num-workers if memory is short.")


class WorkerErrors:
    """A DataLoader whose workers' errors of ours keep their one-line message.

    DataLoader re-raises a worker's exception as the same type with the worker's whole traceback
    in the message; the command line would print all of it. Our errors (AlexnetLabError) are
    raised again with the original message, the traceback's last line.
    """

    def __init__(self, loader: DataLoader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        try:
            yield from self.loader
        except AlexnetLabError as exc:
            text = str(exc)
            if "Original Traceback" not in text:
                raise
            prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
            last = [line for line in text.splitlines() if line.startswith(prefix)]
            raise type(exc)(last[-1][len(prefix):] if last else text.splitlines()[0]) from None


def make_loader(dataset: StoreDataset, batch_size: int, shuffle: bool, seed: int, epoch: int, workers: int,
                pin_memory: bool = False, world=None, groups: list[list[int]] | None = None) -> WorkerErrors:
    """A loader whose order depends only on (seed, epoch): a resumed run sees the same batches.

    With a distributed `world` (train.launch_env.World) this process gets its EpochShares part of the
    same permutation and `batch_size` is already the per-process batch. `groups`: a streamed shard
    store's positions by shard (data.remote_shards.shard_groups), read through ShardBatches.
    """
    dataset.set_epoch(epoch)
    if groups is not None:  # streamed shards: each worker reads its own, in order
        rank, size = (world.rank, world.size) if world is not None and world.distributed else (0, 1)
        batches = ShardBatches(groups, batch_size, rank, size, workers, seed, epoch, shuffle)
        return WorkerErrors(DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=False))
    if world is not None and world.distributed:
        sampler = EpochShares(len(dataset), world.rank, world.size, seed, epoch, shuffle)
        return WorkerErrors(DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                       pin_memory=pin_memory, drop_last=False, persistent_workers=False))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return WorkerErrors(DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                   num_workers=workers, pin_memory=pin_memory, drop_last=False, persistent_workers=False))


class Normaliser:
    """uint8 NHWC batch -> float NCHW input: x = pixel * scale + offset per channel (BGR flip first)."""

    def __init__(self, scale: np.ndarray, offset: np.ndarray, bgr: bool, device: torch.device, channels_last: bool):
        self.scale = torch.from_numpy(scale).to(device).view(1, 3, 1, 1)
        self.offset = torch.from_numpy(offset).to(device).view(1, 3, 1, 1)
        self.bgr, self.device, self.channels_last = bgr, device, channels_last

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        if self.bgr:
            batch = batch.flip(-1)
        x = batch.permute(0, 3, 1, 2).float() * self.scale + self.offset
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=memory_format)
