"""Streaming, shards and the decoded cache: every sample of an epoch exactly once over simulated
DDP ranks and loader workers, resume order, cache reuse and invalidation, stream == memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data import AugmentSpec, read_class_folder
from alexnet_lab.data.cache import cached_store
from alexnet_lab.data.datasets import decode_all, read_source
from alexnet_lab.data.ragged import CachedImages
from alexnet_lab.data.shards import write_shards
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.train.launch_env import World
from alexnet_lab.train.torch.data import IGNORE, StoreDataset, make_loader

SPEC = PreprocessSpec(resize=8, resize_mode="square", crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name="t8")
COUNT = 37  # odd: the ranks' shares differ in length, so padding is exercised


def colour(i: int) -> tuple[int, int, int]:
    """A colour that names sample i (PNG keeps it exactly)."""
    return (i, 255 - i, (7 * i) % 256)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colours")
    for i in range(COUNT):
        (root / f"c{i % 3}").mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), colour(i)).save(root / f"c{i % 3}" / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    write_shards(read_class_folder(folder), out, per_shard=5)
    return out


def _index(source: Path):
    return read_source(str(source))["all"]


def _seen(images, labels, rank: int, size: int, epoch: int, workers: int, batch: int = 4) -> list[int]:
    """Sample ids (from their colour) one rank trains on in `epoch`, padding left out."""
    loader = make_loader(StoreDataset(images, labels, 8, None), batch, True, 3, epoch, workers, world=World(rank, size))
    ids = []
    for x, y in loader:
        ids += [int(pixel) for pixel, label in zip(x[:, 0, 0, 0], y) if int(label) != IGNORE]
    return ids


@pytest.mark.parametrize("source", ["folder", "shards"])
@pytest.mark.parametrize("workers", [0, 2])
def test_two_ranks_see_every_sample_of_an_epoch_exactly_once(source, workers, request):
    index = _index(request.getfixturevalue(source))
    images = StreamedImages(index.paths, SPEC, "draft")
    for epoch in (0, 1):
        both = _seen(images, index.labels, 0, 2, epoch, workers) + _seen(images, index.labels, 1, 2, epoch, workers)
        assert sorted(both) == list(range(COUNT))


def test_ranks_step_in_lockstep_and_cover_the_single_process_order(folder):
    index = _index(folder)
    images = StreamedImages(index.paths, SPEC)
    single = _seen(images, index.labels, 0, 1, 5, 0)
    rank0, rank1 = _seen(images, index.labels, 0, 2, 5, 0), _seen(images, index.labels, 1, 2, 5, 0)
    assert rank0 == single[0::2] and rank1 == single[1::2]  # one permutation of (seed, epoch), dealt out
    loaders = [make_loader(StoreDataset(images, index.labels, 8, None), 4, True, 3, 5, 0, world=World(r, 2))
               for r in (0, 1)]
    assert len(loaders[0]) == len(loaders[1])  # DDP needs the same number of steps everywhere


def test_resume_continues_the_same_sample_order(folder):
    """The order of epoch e is a function of (seed, e) only: a fresh loader built after a restart
    at epoch 2 gives what the uninterrupted run's loader gave, whatever the worker count."""
    index = _index(folder)
    images = StreamedImages(index.paths, SPEC)
    uninterrupted = [_seen(images, index.labels, 0, 1, epoch, 0) for epoch in range(3)]
    resumed = _seen(StreamedImages(index.paths, SPEC), index.labels, 0, 1, 2, 2)
    assert resumed == uninterrupted[2] and uninterrupted[1] != uninterrupted[2]


def test_streamed_and_in_memory_training_batches_are_identical(folder):
    index = _index(folder)
    memory, labels, _ = decode_all(index, SPEC)
    augment = AugmentSpec(hflip=True)
    batches = []
    for images in (memory, StreamedImages(index.paths, SPEC, "pil")):
        loader = make_loader(StoreDataset(images, labels, 6, augment, seed=1), 8, True, 1, 4, 0)
        batches.append([(x.numpy(), y.numpy()) for x, y in loader])
    for (x0, y0), (x1, y1) in zip(*batches):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)


def test_shards_hold_the_folder_samples(folder, shards):
    from_folder, from_shards = _index(folder), _index(shards)
    assert from_shards.class_names == from_folder.class_names
    pixels = {tuple(StreamedImages([p], SPEC)[0][0, 0]): label for p, label in zip(from_shards.paths,
                                                                                    from_shards.labels)}
    assert pixels == {colour(i): i % 3 for i in range(COUNT)}
    assert len(list(shards.glob("*.tar"))) == 8  # 37 at 5 a shard


def test_cache_is_reused_and_rebuilt_when_the_preprocessing_changes(folder, tmp_path):
    index = _index(folder)
    images, labels, bad, reused = cached_store(index, SPEC, "pil", tmp_path)
    assert not reused and not bad and isinstance(images, CachedImages)
    memory, memory_labels, _ = decode_all(index, SPEC)
    np.testing.assert_array_equal(np.asarray(images), memory)
    np.testing.assert_array_equal(labels, memory_labels)
    assert cached_store(index, SPEC, "pil", tmp_path)[3]  # reused
    bigger = replace(SPEC, resize=10, crop=10)
    again, _, _, reused = cached_store(index, bigger, "pil", tmp_path)
    assert not reused and again.shape[1:] == (10, 10, 3)
    assert not cached_store(index.subset(range(10)), SPEC, "pil", tmp_path)[3]  # another index: its own cache
    assert len(list(tmp_path.iterdir())) == 3


def test_unreadable_streamed_image_is_black_or_raises_when_strict(folder, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    images = StreamedImages([str(bad)], SPEC)
    assert not images[0].any()
    with pytest.raises(Exception, match="bad.jpg"):
        StreamedImages([str(bad)], SPEC, strict=True)[0]


def test_draft_decoding_keeps_at_least_the_resize(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 900, 3), dtype=np.uint8)).save(path)
    from alexnet_lab.data.datasets import load_pixels

    assert load_pixels(str(path), min_side=256).shape == (300, 450, 3)  # 1/2 scale: still >= 256
    assert load_pixels(str(path)).shape == (600, 900, 3)
    spec = PreprocessSpec(resize=256, crop=224, name="t256")
    draft, full = StreamedImages([str(path)], spec, "draft")[0], StreamedImages([str(path)], spec, "pil")[0]
    assert draft.shape == full.shape == (256, 256, 3)


def test_padding_marker_is_ignored_by_the_loss():
    logits = torch.randn(3, 4)
    full = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([1, 2]))
    padded = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 2, IGNORE]))
    assert torch.allclose(full, padded)
