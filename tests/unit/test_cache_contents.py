"""The decoded cache is keyed by contents: an image fixed in place (same path) comes back with its
new pixels, and the images that did not change are copied, never decoded again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data import cache as cache_module
from alexnet_lab.data import read_class_folder
from alexnet_lab.data.cache import cached_store
from alexnet_lab.data.datasets import decode_all

SPEC = PreprocessSpec(resize=8, resize_mode="square", crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name="t8")


def _folder(root: Path, count: int = 6) -> Path:
    old = time.time() - 3600  # files last changed an hour ago: not 'racy', so a stamp alone decides
    for i in range(count):
        path = root / f"c{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(path)
        os.utime(path, (old, old))
    return root


def _counting(monkeypatch) -> list[str]:
    decoded: list[str] = []
    real = cache_module.resized_pixels

    def counted(path, spec, decoder="pil"):
        decoded.append(path)
        return real(path, spec, decoder)

    monkeypatch.setattr(cache_module, "resized_pixels", counted)
    return decoded


def test_an_image_fixed_in_place_gets_its_new_pixels_and_only_it_is_decoded(tmp_path, monkeypatch):
    index = read_class_folder(_folder(tmp_path / "data"))
    decoded = _counting(monkeypatch)
    images, _, _, reused = cached_store(index, SPEC, "pil", tmp_path / "cache")
    assert not reused and len(decoded) == 6
    decoded.clear()
    assert cached_store(index, SPEC, "pil", tmp_path / "cache")[3] and decoded == []  # nothing changed: no decode
    fixed = index.samples[2].path
    Image.new("RGB", (8, 8), (0, 200, 0)).save(fixed)  # the same path, new pixels
    images, labels, bad, reused = cached_store(index, SPEC, "pil", tmp_path / "cache")
    assert reused and decoded == [fixed] and not bad
    assert tuple(images[2][0, 0]) == (0, 200, 0)
    np.testing.assert_array_equal(np.asarray(images), decode_all(index, SPEC)[0])  # the copied rows are right too
    assert len(list(next((tmp_path / "cache").iterdir()).iterdir())) == 3  # the old generation is gone


def test_a_file_replaced_with_the_same_size_and_mtime_is_seen_by_inode_or_ctime(tmp_path, monkeypatch):
    index = read_class_folder(_folder(tmp_path / "data", 2))
    decoded = _counting(monkeypatch)
    cached_store(index, SPEC, "pil", tmp_path / "cache")
    target = Path(index.samples[0].path)
    stamp = target.stat()
    other = tmp_path / "other.png"
    Image.new("RGB", (8, 8), (0, 0, 250)).save(other)
    os.replace(other, target)  # a rename over it, then its old mtime put back
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    decoded.clear()
    images = cached_store(index, SPEC, "pil", tmp_path / "cache")[0]
    assert decoded == [str(target)] and tuple(images[0][0, 0]) == (0, 0, 250)


def test_a_fixed_unreadable_image_joins_and_a_broken_one_leaves(tmp_path, monkeypatch):
    index = read_class_folder(_folder(tmp_path / "data", 4))
    broken = Path(index.samples[1].path)
    broken.write_bytes(b"not a png")
    images, labels, bad, _ = cached_store(index, SPEC, "pil", tmp_path / "cache")
    assert bad == [str(broken)] and len(images) == 3
    Image.new("RGB", (8, 8), (1, 2, 3)).save(broken)
    Path(index.samples[3].path).write_bytes(b"broken now")
    images, labels, bad, _ = cached_store(index, SPEC, "pil", tmp_path / "cache")
    assert bad == [index.samples[3].path] and len(images) == 3 and tuple(images[1][0, 0]) == (1, 2, 3)
    assert labels.tolist() == [s.label for s in index.samples[:3]]
