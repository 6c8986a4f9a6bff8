"""WebDataset-style tar shards: `.tar` files of `KEY.jpg` + `KEY.cls` pairs, read and written.

A shard folder holds `*.tar` files and `classes.txt` (one class name a line; label i is line i),
or `train/`, `val/`, `test/` folders of them. Reading indexes every member's byte offset once
(tar headers only), so a sample is addressed by a virtual path `SHARD.tar::OFFSET+SIZE/NAME` and
read with one seek: the sampler that splits an epoch over DDP ranks and loader workers
(every sample exactly once) works for shards exactly as for files, and resume needs nothing new.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.data.images import IMAGE_EXTENSIONS, ImageReadError, read_image_rgb
from alexnet_lab.data.index import DatasetIndex, Sample

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.txt"
MEMBER = re.compile(r"^(?P<tar>.*\.tar)::(?P<offset>\d+)\+(?P<size>\d+)/(?P<name>.+)$")
SHARD_SPLITS = ("train", "val", "test")


def is_member_path(path: str) -> bool:
    """True for a virtual `SHARD.tar::OFFSET+SIZE/NAME` sample path."""
    return ".tar::" in path and MEMBER.match(path) is not None


def read_member(path: str, min_side: int | None = None) -> np.ndarray:
    """uint8 RGB pixels of a tar member named by its virtual path (one seek, one read)."""
    found = MEMBER.match(path)
    try:
        with open(found["tar"], "rb") as fh:
            fh.seek(int(found["offset"]))
            content = fh.read(int(found["size"]))
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}; check the shard file.") from None
    return read_image_rgb(path, content=content, min_side=min_side)


def is_shard_folder(folder: Path) -> bool:
    """A folder of `*.tar` shards, directly or in train/ val/ test/."""
    return any(folder.glob("*.tar")) or any((folder / split).is_dir() and any((folder / split).glob("*.tar"))
                                            for split in SHARD_SPLITS)


def _class_names(folder: Path, labels: list[int]) -> tuple[str, ...]:
    for place in (folder, folder.parent):
        if (place / CLASSES_FILE).is_file():
            return tuple(line.strip() for line in (place / CLASSES_FILE).read_text().splitlines() if line.strip())
    return tuple(str(i) for i in range(max(labels, default=-1) + 1))


def _tar_samples(tar_path: Path) -> list[tuple[str, int]]:
    """(virtual path, label) of each KEY.<image> + KEY.cls pair of one shard, in member order."""
    images: dict[str, str] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = os.path.splitext(member.name)
                if ext.lower() in IMAGE_EXTENSIONS:
                    images[key] = f"{tar_path}::{member.offset_data}+{member.size}/{member.name}"
                elif ext == ".cls":
                    labels[key] = int(tar.extractfile(member).read().decode().strip())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise UserInputError(f"cannot read shard '{tar_path}' ({exc}); expected an uncompressed tar of KEY.jpg + "
                             "KEY.cls pairs, as `alexnet shards` writes.") from None
    return [(path, labels[key]) for key, path in images.items() if key in labels]


def read_shard_index(folder: Path) -> DatasetIndex:
    """Every sample of the `*.tar` files directly in `folder`, shards in name order."""
    pairs = [pair for tar_path in sorted(folder.glob("*.tar")) for pair in _tar_samples(tar_path.resolve())]
    if not pairs:
        raise UserInputError(f"no KEY.jpg + KEY.cls pairs in the shards of '{folder}'; write them with "
                             "`alexnet shards CLASS_FOLDER OUT_DIR`.")
    names = _class_names(folder, [label for _, label in pairs])
    return DatasetIndex([Sample(path, label) for path, label in pairs], names, str(folder.resolve()))


def read_shard_splits(folder: Path) -> dict[str, DatasetIndex]:
    """{'all': index} for a flat shard folder, else one index per train/ val/ test/ folder."""
    if any(folder.glob("*.tar")):
        return {"all": read_shard_index(folder)}
    return {split: read_shard_index(folder / split) for split in SHARD_SPLITS
            if (folder / split).is_dir() and any((folder / split).glob("*.tar"))}


def _write_shard(target: Path, samples: list[tuple[int, Sample]]) -> None:
    with atomic_path(target) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for number, sample in samples:
            ext = Path(sample.path).suffix.lower().replace(".jpeg", ".jpg")
            tar.add(sample.path, arcname=f"{number:08d}{ext}")
            label = f"{sample.label}".encode()
            info = tarfile.TarInfo(f"{number:08d}.cls")
            info.size = len(label)
            tar.addfile(info, io.BytesIO(label))


def write_shards(index: DatasetIndex, out_dir: Path, per_shard: int = 1000, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write `index` as shards of `per_shard` samples (shuffled by `seed`, so shards mix classes)
    plus classes.txt; each shard is written atomically. Returns the shard paths."""
    if per_shard < 1:
        raise UserInputError(f"--per-shard must be at least 1; received {per_shard}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(index))
    numbered = [(int(i), index.samples[int(i)]) for i in order]
    written = []
    for start in range(0, len(numbered), per_shard):
        target = out_dir / f"shard-{start // per_shard:06d}.tar"
        _write_shard(target, numbered[start : start + per_shard])
        written.append(target)
        if progress is not None:
            progress(len(numbered[start : start + per_shard]))
    with atomic_path(out_dir / CLASSES_FILE) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in index.class_names))
    log.info("wrote %d shard(s) of %d images to %s", len(written), len(index), out_dir)
    return written
