"""A decoded store on disk: built once, memory-mapped by every later run (and by `evaluate`).

The cache of one data set lives in `CACHE_DIR/KEY/` as `images.u8` (raw uint8 rows of the stored
square, in index order, unreadable files left out) and `meta.json` (row count, side, labels,
skipped paths). KEY is a sha256 of the index (every path and label), the preprocessing fields that
shape the stored pixels (resize, resize mode, antialias) and the decoder, so another split,
another resize or another decoder builds its own cache and never reads a stale one. Both files are
written atomically, meta.json last: a cache without it was never finished and is rebuilt.
Reading maps the file (np.memmap) and never loads it whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data.images import ImageReadError
from alexnet_lab.data.index import DatasetIndex
from alexnet_lab.data.stream import stored_pixels, stored_size

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # raise when the file layout or the decoding changes: old caches are then never read


def cache_key(index: DatasetIndex, spec: PreprocessSpec, decoder: str) -> str:
    """sha256 of what decides the cached bytes: the samples, the stored-view preprocessing, the decoder."""
    doc = {"version": CACHE_VERSION, "samples": [[s.path, s.label] for s in index.samples],
           "stored": [spec.resize, spec.resize_mode, spec.antialias], "decoder": decoder}
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def _decode_or_none(path: str, spec: PreprocessSpec, decoder: str, strict: bool) -> np.ndarray | None:
    try:
        return stored_pixels(path, spec, decoder)
    except ImageReadError as exc:
        if strict:
            raise
        log.warning("skipping unreadable image: %s", exc)
        return None


def build_cache(index: DatasetIndex, spec: PreprocessSpec, decoder: str, folder: Path, strict: bool = False,
                progress: Callable[[int], None] | None = None, threads: int = 2) -> None:
    """Decode `index` into `folder` (images.u8, then meta.json), streaming rows to the file."""
    side, labels, bad = stored_size(spec), [], []
    with atomic_path(folder / "images.u8") as tmp, open(tmp, "wb") as fh, ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(index), 64):  # bounded: 64 rows in flight
            chunk = index.samples[start : start + 64]
            for sample, image in zip(chunk, pool.map(lambda s: _decode_or_none(s.path, spec, decoder, strict), chunk)):
                if image is None:
                    bad.append(sample.path)
                    continue
                fh.write(image.tobytes())
                labels.append(sample.label)
            if progress is not None:
                progress(len(chunk))
    meta = {"version": CACHE_VERSION, "count": len(labels), "side": side, "labels": labels, "skipped": bad}
    with atomic_path(folder / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta))


def open_cache(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(memory-mapped images, labels, skipped paths) of a finished cache, or None."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("version") != CACHE_VERSION or meta["count"] == 0:
        return None
    side = meta["side"]
    images = np.memmap(folder / "images.u8", np.uint8, "r", shape=(meta["count"], side, side, 3))
    return images, np.asarray(meta["labels"], np.int64), list(meta["skipped"])


def cached_store(index: DatasetIndex, spec: PreprocessSpec, decoder: str, cache_dir: str | Path, strict: bool = False,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], bool]:
    """(images, labels, skipped paths, reused): the cache of `index`, built first if it is missing."""
    folder = Path(cache_dir).expanduser() / cache_key(index, spec, decoder)
    found = open_cache(folder)
    if found is not None:
        log.info("decoded cache: reusing %s (%d images)", folder, len(found[1]))
        return (*found, True)
    log.info("decoded cache: building %s from %d images", folder, len(index))
    build_cache(index, spec, decoder, folder, strict, progress)
    found = open_cache(folder)
    if found is None:
        raise UserInputError(f"no readable images among {len(index)} files; check the data folder.")
    return (*found, False)
