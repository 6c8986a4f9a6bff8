"""CIFAR-10 from the official python batches: download with checksum, or a local copy.

The archive holds `cifar-10-batches-py/data_batch_1..5`, `test_batch` and `batches.meta`:
pickled dicts (written by Python 2) with b'data' (N x 3072 uint8, the R, G and B planes of 32x32
images, row-major) and b'labels'. They are read through the project's restricted unpickler, so
a tampered file cannot run code. Samples are addressed as virtual paths
`cifar10:SPLIT:INDEX:ROOT`, read from a per-process cache of the decoded arrays.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data.index import DatasetIndex, Sample

log = logging.getLogger(__name__)

PREFIX = "cifar10:"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
URL_ENV = "ALEXNET_LAB_CIFAR10_URL"  # a mirror (or a test server) instead of the official site


def archive():
    from alexnet_lab.weights.download import RemoteFile

    return RemoteFile(name="cifar10", url=os.environ.get(URL_ENV, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
                      filename="cifar-10-python.tar.gz",
                      sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", size=170498071)


def _load_pickle(path: Path) -> dict:
    from alexnet_lab.weights.formats.caffe_npy import restricted_load

    if not path.is_file():
        raise UserInputError(f"CIFAR-10 batch file {path} is missing; pass --data-dir the '{BATCH_DIR}' folder.")
    with open(path, "rb") as fh:
        obj = restricted_load(fh, str(path))
    if not isinstance(obj, dict):
        raise UserInputError(f"{path} is not a CIFAR-10 batch (expected a dict); re-download it.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def class_names(root: Path) -> tuple[str, ...]:
    names = _load_pickle(root / "batches.meta")["label_names"]
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


@lru_cache(maxsize=4)
def load_split_arrays(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N x 32 x 32 x 3, int64 labels) of 'train' (all five batches) or 'test'."""
    images, labels = [], []
    for name in TRAIN_BATCHES if split == "train" else ("test_batch",):
        batch = _load_pickle(Path(root) / name)
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise UserInputError(f"{Path(root) / name}: expected data of shape (N, 3072); received {data.shape}.")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # planes -> HWC
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def read_pixels(path: str) -> np.ndarray:
    split, index, root = path[len(PREFIX):].split(":", 2)
    return load_split_arrays(root, split)[0][int(index)]


def indexes(root: Path) -> dict[str, DatasetIndex]:
    """{'all': the 50,000 training images, 'test': the 10,000 test images} as virtual paths."""
    names = class_names(root)
    out = {}
    for split, key in (("train", "all"), ("test", "test")):
        _, labels = load_split_arrays(str(root), split)
        out[key] = DatasetIndex([Sample(f"{PREFIX}{split}:{i}:{root}", int(y)) for i, y in enumerate(labels)], names)
    return out


def _extract(archive_path: Path, cache: Path) -> Path:
    target = cache / BATCH_DIR
    with tempfile.TemporaryDirectory(dir=cache, prefix=".cifar10-") as tmp:
        with tarfile.open(archive_path, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # 'data' refuses links and paths outside tmp
        shutil.move(str(Path(tmp) / BATCH_DIR), target)  # whole folder appears at once
    return target


def locate(data_dir: str | None, cache_dir: str | None = None) -> Path:
    """The batches folder: --data-dir (the batches folder or its parent), else the cache,
    downloading and checking the official archive when it is not there yet."""
    from alexnet_lab.weights.download import default_cache_dir, fetch

    if data_dir is not None:
        base = Path(data_dir).expanduser()
        for candidate in (base, base / BATCH_DIR):
            if (candidate / "batches.meta").is_file():
                return candidate
        raise UserInputError(f"--data-dir '{data_dir}' holds no CIFAR-10 python batches ('{BATCH_DIR}/batches.meta'); "
                             "pass the extracted folder, or a class folder as --data instead.")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if (cache / BATCH_DIR / "batches.meta").is_file():
        return cache / BATCH_DIR
    log.info("CIFAR-10 is not in the cache %s: downloading it", cache)
    return _extract(fetch(archive(), cache_dir=cache), cache)
