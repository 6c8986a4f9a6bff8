"""PyTorch input pipeline over the decoded uint8 store: augmentation per sample (numpy, seeded
per epoch and index so any worker count gives the same batches), normalisation on the batch."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.datasets import eval_view, train_view


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
        image = self.images[index]
        if self.augment is None:
            view = eval_view(image, self.crop)
        else:
            view = train_view(image, self.augment, self.crop, np.random.default_rng([self.seed, self.epoch, index]))
        return torch.from_numpy(view), int(self.labels[index])


def make_loader(dataset: StoreDataset, batch_size: int, shuffle: bool, seed: int, epoch: int, workers: int,
                pin_memory: bool = False, world=None) -> DataLoader:
    """A loader whose order depends only on (seed, epoch): a resumed run sees the same batches.

    With a distributed `world` (train.world.World) this process gets its DistributedSampler share
    of the epoch and `batch_size` is already the per-process batch.
    """
    dataset.set_epoch(epoch)
    if world is not None and world.distributed:
        sampler = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=shuffle,
                                     seed=seed * 100_003, drop_last=False)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                          pin_memory=pin_memory, drop_last=False, persistent_workers=False)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, persistent_workers=False)


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
