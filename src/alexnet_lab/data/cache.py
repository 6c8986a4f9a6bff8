"""A decoded store on disk: built once, memory-mapped by every later run (and by `evaluate`),
refreshed row by row when image files change.

The cache of one data set lives in `CACHE_DIR/KEY/`. KEY is a sha256 of the index (every path and
label), the preprocessing fields that shape the stored pixels (resize, resize mode, antialias) and
the decoder, so another split, resize or decoder builds its own cache. Inside, `meta.json` names
the current generation G, whose `images-G.u8` holds raw uint8 rows of the stored square (readable
samples, in index order) and `rows-G.npy` one line per sample: its row (-1: unreadable, skipped)
and the stamp of its file when it was decoded.

Contents are recognised by a stamp, (size, mtime_ns, ctime_ns, inode) of the file (of the tar for
a shard member), not by a content hash: hashing would read every byte of the data set at every
start, as much I/O as decoding it, while a stat reads none. The stamp catches an image fixed in
place (mtime and ctime move, and usually the size), one replaced by a rename (inode) and one copied
over with its old mtime kept (ctime). A file whose mtime is within RACY_NS of the moment it was
stamped could still change within the file system's clock tick unseen, so it is re-decoded next
time (git's "racy clean" rule). Opening the cache stats every file and re-decodes only the samples
whose stamp moved; every other row is copied from the previous generation, never re-decoded.
A generation (named by the stamps, so the processes of one run refreshing together write the same
files) is written beside the last one, files atomically and meta.json last: a crash or a
concurrent reader always sees a complete cache. Reading maps the file (np.memmap), never loads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data.images import ImageReadError
from alexnet_lab.data.index import DatasetIndex
from alexnet_lab.data.shards import MEMBER, is_member_path
from alexnet_lab.data.stream import stored_pixels, stored_size

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # raise when the file layout or the decoding changes: old caches are then never read
RACY_NS = 2_000_000_000  # coarsest common file-time granularity (FAT, some network shares): 2 s
VIRTUAL = ("synthetic:", "cifar10:")  # sample paths whose pixels follow from the path alone
MISSING, FIXED = -1, -2  # stamps of a file that cannot be stat'ed and of a virtual sample
_CHUNK = 64  # rows in flight while writing


def cache_key(index: DatasetIndex, spec: PreprocessSpec, decoder: str) -> str:
    """sha256 of what decides the cached bytes: the samples, the stored-view preprocessing, the decoder."""
    doc = {"version": CACHE_VERSION, "samples": [[s.path, s.label] for s in index.samples],
           "stored": [spec.resize, spec.resize_mode, spec.antialias], "decoder": decoder}
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def file_stamp(path: str) -> tuple[int, int, int, int]:
    """(size, mtime_ns, ctime_ns, inode) of the file behind a sample path (the tar of a shard
    member); all MISSING when it cannot be stat'ed, all FIXED for a virtual sample."""
    if path.startswith(VIRTUAL):
        return (FIXED,) * 4
    try:
        st = os.stat(MEMBER.match(path)["tar"] if is_member_path(path) else path)
    except OSError:
        return (MISSING,) * 4
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def stale_samples(rows: np.ndarray, stamps: np.ndarray, stamped_ns: int) -> np.ndarray:
    """Positions whose file changed since it was decoded, or was too fresh then to be sure it had not."""
    moved = (rows[:, 1:] != stamps).any(axis=1)
    racy = (stamps[:, 0] >= 0) & (stamps[:, 1] >= stamped_ns - RACY_NS)
    return np.flatnonzero(moved | racy)


def _decode_or_none(path: str, spec: PreprocessSpec, decoder: str, strict: bool) -> np.ndarray | None:
    try:
        return stored_pixels(path, spec, decoder)
    except ImageReadError as exc:
        if strict:
            raise
        log.warning("skipping unreadable image: %s", exc)
        return None


def _read(folder: Path) -> tuple[dict, np.ndarray, np.ndarray] | None:
    """(meta, memory-mapped images, rows) of a finished cache, or None."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION or meta["count"] == 0:
            return None
        gen, side = meta["generation"], meta["side"]
        rows = np.load(folder / f"rows-{gen}.npy")
        images = np.memmap(folder / f"images-{gen}.u8", np.uint8, "r", shape=(meta["count"], side, side, 3))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta, images, rows


def open_cache(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(memory-mapped images, labels, skipped paths) of a finished cache, or None."""
    found = _read(folder)
    if found is None:
        return None
    meta, images, _ = found
    return images, np.asarray(meta["labels"], np.int64), list(meta["skipped"])


def build_cache(index: DatasetIndex, spec: PreprocessSpec, decoder: str, folder: Path, strict: bool = False,
                progress: Callable[[int], None] | None = None, threads: int = 2,
                previous: tuple[dict, np.ndarray, np.ndarray] | None = None, stale: np.ndarray | None = None,
                stamps: np.ndarray | None = None, stamped_ns: int | None = None) -> None:
    """Write a new generation of `index`'s cache in `folder`: the `stale` samples (all, without a
    `previous` generation) decoded, every other row copied from `previous`; meta.json last."""
    stamped_ns = time.time_ns() if stamped_ns is None else stamped_ns
    stamps = np.array([file_stamp(s.path) for s in index.samples], np.int64).reshape(-1, 4) if stamps is None else stamps
    redo = np.ones(len(index), bool)
    if previous is not None and stale is not None:
        redo[:] = False
        redo[stale] = True
    # named by the stamps: the processes of one run refreshing at once write the same files, not one copy each
    gen = hashlib.sha256(stamps.tobytes()).hexdigest()[:16]
    side, labels, bad, rows = stored_size(spec), [], [], np.full(len(index), -1, np.int64)

    def row_of(position: int) -> np.ndarray | None:
        if redo[position]:
            return _decode_or_none(index.samples[position].path, spec, decoder, strict)
        old = int(previous[2][position, 0])
        return None if old < 0 else np.asarray(previous[1][old])

    with atomic_path(folder / f"images-{gen}.u8") as tmp, open(tmp, "wb") as fh, ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(index), _CHUNK):  # bounded: one chunk of rows in flight
            chunk = range(start, min(start + _CHUNK, len(index)))
            for position, image in zip(chunk, pool.map(row_of, chunk)):
                if image is None:
                    bad.append(index.samples[position].path)
                    continue
                rows[position] = len(labels)
                fh.write(image.tobytes())
                labels.append(index.samples[position].label)
            if progress is not None:
                progress(len(chunk))
    with atomic_path(folder / f"rows-{gen}.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.concatenate([rows[:, None], stamps], axis=1))
    meta = {"version": CACHE_VERSION, "generation": gen, "count": len(labels), "side": side, "labels": labels,
            "skipped": bad, "stamped_ns": stamped_ns}
    with atomic_path(folder / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta))
    if previous is not None and previous[0]["generation"] != gen:  # readers that mapped it keep their copy
        for name in (f"images-{previous[0]['generation']}.u8", f"rows-{previous[0]['generation']}.npy"):
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError:  # still mapped by a reader where that forbids removal (Windows): left behind
                pass


def cached_store(index: DatasetIndex, spec: PreprocessSpec, decoder: str, cache_dir: str | Path, strict: bool = False,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], bool]:
    """(images, labels, skipped paths, reused): the cache of `index`, built first if it is missing,
    with the samples whose files changed since (by their stamp) decoded again."""
    folder = Path(cache_dir).expanduser() / cache_key(index, spec, decoder)
    stamped_ns = time.time_ns()  # before the stats: a file changed after them is newer than this
    stamps = np.array([file_stamp(s.path) for s in index.samples], np.int64).reshape(-1, 4)
    previous = _read(folder)
    if previous is not None and len(previous[2]) == len(index):
        stale = stale_samples(previous[2], stamps, previous[0]["stamped_ns"])
        if not len(stale):
            meta, images, _ = previous
            log.info("decoded cache: reusing %s (%d images)", folder, meta["count"])
            return images, np.asarray(meta["labels"], np.int64), list(meta["skipped"]), True
        log.info("decoded cache: %d of %d images changed since %s was built; decoding those again", len(stale),
                 len(index), folder)
    else:
        previous, stale = None, None
        log.info("decoded cache: building %s from %d images", folder, len(index))
    build_cache(index, spec, decoder, folder, strict, progress, previous=previous, stale=stale, stamps=stamps,
                stamped_ns=stamped_ns)
    found = open_cache(folder)
    if found is None:
        raise UserInputError(f"no readable images among {len(index)} files; check the data folder.")
    return (*found, previous is not None)
