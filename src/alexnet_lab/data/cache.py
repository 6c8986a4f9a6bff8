"""A decoded store on disk: built once, memory-mapped by every later run (and by `evaluate` and
`verify --images`), refreshed row by row when image files change.

The cache of one data set lives in `CACHE_DIR/KEY/`. KEY is a sha256 of the index (every path and
label), the preprocessing fields that shape the stored pixels (resize, resize mode, antialias), the
decoder and the store format, so another split, resize, decoder or format builds its own cache.
Inside, `meta.json` names the current generation G, whose `data-G.bin` holds every readable image
whole, resized as the preprocessing resizes and not cropped (data.ragged: raw pixels or re-encoded
JPEGs, end to end), and `index-G.npy` one row per sample (data.ragged.INDEX_COLUMNS): its store row
(-1: unreadable, skipped), the stamp of its file when it was decoded, where its bytes lie and their
shape. Every file is checked against the others and against its bounds when opened; a cache that
fails is logged and built again, never read (data.ragged.check_index).

Contents are recognised by a stamp, (size, mtime_ns, ctime_ns, inode) of the file (of the tar for
a shard member), not by a content hash: hashing would read every byte of the data set at every
start, as much I/O as decoding it, while a stat reads none. The stamp catches an image fixed in
place (mtime and ctime move, and usually the size), one replaced by a rename (inode) and one copied
over with its old mtime kept (ctime). A file whose mtime is within RACY_NS of the moment it was
stamped could still change within the file system's clock tick unseen, so it is re-decoded next
time (git's "racy clean" rule). Opening the cache stats every file and re-decodes only the samples
whose stamp moved; every other row is copied from the previous generation, never re-decoded.

There is no lock: a generation is named by the stamps (and its bytes follow from them), so
processes building the same cache at once (the ranks of one run, two runs) write the same files.
Each file is written beside the last generation atomically, meta.json last, so a crash or a
concurrent reader always sees a complete cache. Reading maps the data file (np.memmap), never loads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
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
from alexnet_lab.data.ragged import (
    INDEX_COLUMNS,
    NBYTES,
    OFFSET,
    PHOTO,
    ROW,
    SHAPE,
    STAMP,
    CacheDamaged,
    CachedImages,
    StoreFormat,
    check_index,
)
from alexnet_lab.data.shards import MEMBER, is_member_path
from alexnet_lab.data.stream import resized_pixels, stored_size

log = logging.getLogger(__name__)

# raise when the file layout or the decoding changes: it is part of every key, so an older cache is
# never read (4: the ragged store of whole images, aspect kept; 3 held centre squares)
CACHE_VERSION = 4
RACY_NS = 2_000_000_000  # coarsest common file-time granularity (FAT, some network shares): 2 s
VIRTUAL = ("synthetic:", "cifar10:")  # sample paths whose pixels follow from the path alone
MISSING, FIXED = -1, -2  # stamps of a file that cannot be stat'ed and of a virtual sample
EVAL_DECODER = "pil"  # decode_all's full-size decoding: evaluate and verify read exactly the files' pixels
_CHUNK = 64  # rows in flight while writing
_GENERATION = re.compile(r"[0-9a-f]{16}")  # meta.json's generation names files: nothing else is accepted


def cache_key(index: DatasetIndex, spec: PreprocessSpec, decoder: str, fmt: StoreFormat = StoreFormat()) -> str:
    """sha256 of what decides the cached bytes: the samples, the stored-view preprocessing, the decoder, the format."""
    doc = {"version": CACHE_VERSION, "samples": [[s.path, s.label] for s in index.samples],
           "stored": [spec.resize, spec.resize_mode, spec.antialias], "decoder": decoder,
           "format": [fmt.kind, fmt.quality if fmt.kind == "jpeg" else None]}
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
    """Positions whose file changed since it was decoded, or was too fresh then to be sure it had not.
    `rows`: the cache's index (data.ragged.INDEX_COLUMNS)."""
    moved = (rows[:, STAMP] != stamps).any(axis=1)
    racy = (stamps[:, 0] >= 0) & (stamps[:, 1] >= stamped_ns - RACY_NS)
    return np.flatnonzero(moved | racy)


def _decode_or_none(path: str, spec: PreprocessSpec, decoder: str, strict: bool):
    try:
        return resized_pixels(path, spec, decoder)
    except ImageReadError as exc:
        if strict:
            raise
        log.warning("skipping unreadable image: %s", exc)
        return None


def _checked(folder: Path, meta: dict, index: DatasetIndex, fmt: StoreFormat) -> np.ndarray:
    """The index array of the generation meta.json names, once every file agrees (else CacheDamaged)."""
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("format") != fmt.kind:
        raise CacheDamaged("a meta.json of another version or format")
    gen, count, data_bytes = meta.get("generation"), meta.get("count"), meta.get("data_bytes")
    if not isinstance(gen, str) or not _GENERATION.fullmatch(gen):
        raise CacheDamaged(f"a generation name {str(gen)[:40]!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, data_bytes, meta.get("stamped_ns"))):
        raise CacheDamaged("a count, size or time that is not a whole number")
    mapped = np.load(folder / f"index-{gen}.npy", mmap_mode="r")  # a header's shape is checked before any copy
    if mapped.ndim != 2 or len(mapped) != len(index):
        raise CacheDamaged(f"an index of shape {mapped.shape} for {len(index)} samples")
    rows = np.array(mapped)
    if os.stat(folder / f"data-{gen}.bin").st_size != data_bytes:
        raise CacheDamaged(f"a data file that is not the {data_bytes:,} bytes meta.json records")
    check_index(rows, count, data_bytes, fmt)
    return rows


def _read(folder: Path, index: DatasetIndex, fmt: StoreFormat) -> tuple[dict, np.ndarray] | None:
    """(meta, index array) of a finished cache whose files all agree, else None (a damaged one is logged)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("decoded cache %s: unreadable meta.json (%s); building it again", folder, exc)
        return None
    try:
        return meta, _checked(folder, meta, index, fmt)
    except (CacheDamaged, OSError, ValueError, EOFError) as exc:
        log.warning("decoded cache %s is damaged (%s); building it again", folder, exc)
        return None


def _opened(folder: Path, found: tuple[dict, np.ndarray], index: DatasetIndex, spec: PreprocessSpec,
            fmt: StoreFormat, strict: bool, decoder: str) -> tuple[CachedImages, np.ndarray, list[str]]:
    """(images, labels, skipped paths) of a checked cache; labels and paths come from the index, not the
    files. `strict`: a skipped image raises its error instead (_strict)."""
    meta, rows = found
    if strict:
        _strict([s.path for s, row in zip(index.samples, rows[:, ROW]) if row < 0], spec, decoder)
    if meta["count"] == 0:
        raise UserInputError(f"no readable images among {len(index)} files; check the data folder.")
    kept = rows[:, ROW] >= 0
    samples = index.samples
    images = CachedImages(folder / f"data-{meta['generation']}.bin", rows[kept], spec, fmt,
                          [s.path for s, keep in zip(samples, kept) if keep], strict)
    labels = np.asarray([s.label for s, keep in zip(samples, kept) if keep], np.int64)
    return images, labels, [s.path for s, keep in zip(samples, kept) if not keep]


def build_cache(index: DatasetIndex, spec: PreprocessSpec, decoder: str, folder: Path, strict: bool = False,
                progress: Callable[[int], None] | None = None, threads: int = 2,
                previous: tuple[dict, np.ndarray] | None = None, stale: np.ndarray | None = None,
                stamps: np.ndarray | None = None, stamped_ns: int | None = None,
                fmt: StoreFormat = StoreFormat()) -> None:
    """Write a new generation of `index`'s cache in `folder`: the `stale` samples (all, without a
    `previous` generation) decoded, every other row's bytes copied from `previous`; meta.json last."""
    stored_size(spec)  # a spec that keeps every image's own size is refused before anything is written
    stamped_ns = time.time_ns() if stamped_ns is None else stamped_ns
    stamps = np.array([file_stamp(s.path) for s in index.samples], np.int64).reshape(-1, 4) if stamps is None else stamps
    redo = np.ones(len(index), bool)
    if previous is not None and stale is not None:
        redo[:] = False
        redo[stale] = True
    old_data = None  # the previous generation's bytes, mapped (an empty file cannot be)
    if previous is not None and previous[0]["data_bytes"]:
        old_data = np.memmap(folder / f"data-{previous[0]['generation']}.bin", np.uint8, "r")
    # named by the stamps: the processes of one run refreshing at once write the same files, not one copy each
    gen = hashlib.sha256(stamps.tobytes()).hexdigest()[:16]
    rows = np.zeros((len(index), len(INDEX_COLUMNS)), np.int64)
    rows[:, ROW] = -1

    def row_of(position: int) -> tuple[bytes, tuple[int, int], tuple[int, int]] | None:
        """(bytes, stored (height, width), photo (height, width)) of a sample, or None when unreadable."""
        if redo[position]:
            found = _decode_or_none(index.samples[position].path, spec, decoder, strict)
            return None if found is None else (fmt.encode(found[0]), found[0].shape[:2], found[1])
        old = previous[1][position]
        if old[ROW] < 0:
            return None
        return old_data[old[OFFSET] : old[OFFSET] + old[NBYTES]].tobytes(), tuple(old[SHAPE]), tuple(old[PHOTO])

    count, offset = 0, 0
    with atomic_path(folder / f"data-{gen}.bin") as tmp, open(tmp, "wb") as fh, ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(index), _CHUNK):  # bounded: one chunk of rows in flight
            chunk = range(start, min(start + _CHUNK, len(index)))
            for position, found in zip(chunk, pool.map(row_of, chunk)):
                if found is not None:
                    data, shape, photo = found
                    rows[position, [ROW, OFFSET, NBYTES]] = (count, offset, len(data))
                    rows[position, SHAPE], rows[position, PHOTO] = shape, photo
                    fh.write(data)
                    count, offset = count + 1, offset + len(data)
            if progress is not None:
                progress(len(chunk))
    rows[:, STAMP] = stamps
    with atomic_path(folder / f"index-{gen}.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, rows)
    meta = {"version": CACHE_VERSION, "generation": gen, "count": count, "format": fmt.kind, "quality": fmt.quality,
            "data_bytes": offset, "stamped_ns": stamped_ns, "columns": list(INDEX_COLUMNS)}
    with atomic_path(folder / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta))
    if previous is not None and previous[0]["generation"] != gen:  # readers that mapped it keep their copy
        for name in (f"data-{previous[0]['generation']}.bin", f"index-{previous[0]['generation']}.npy"):
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError:  # still mapped by a reader where that forbids removal (Windows): left behind
                pass


def cached_store(index: DatasetIndex, spec: PreprocessSpec, decoder: str, cache_dir: str | Path, strict: bool = False,
                 progress: Callable[[int], None] | None = None,
                 fmt: StoreFormat = StoreFormat()) -> tuple[CachedImages, np.ndarray, list[str], bool]:
    """(images, labels, skipped paths, reused): the cache of `index`, built first if it is missing
    or damaged, with the samples whose files changed since (by their stamp) decoded again.

    Raises:
        UserInputError: no image is readable, or the cache must be written and `cache_dir` is not writable.
    """
    folder = Path(cache_dir).expanduser() / cache_key(index, spec, decoder, fmt)
    stamped_ns = time.time_ns()  # before the stats: a file changed after them is newer than this
    stamps = np.array([file_stamp(s.path) for s in index.samples], np.int64).reshape(-1, 4)
    previous = _read(folder, index, fmt)
    if previous is not None:
        stale = stale_samples(previous[1], stamps, previous[0]["stamped_ns"])
        if not len(stale):
            log.info("decoded cache: reusing %s (%d images)", folder, previous[0]["count"])
            return (*_opened(folder, previous, index, spec, fmt, strict, decoder), True)
        log.info("decoded cache: %d of %d images changed since %s was built; decoding those again", len(stale),
                 len(index), folder)
    else:
        stale = None
        log.info("decoded cache: building %s from %d images", folder, len(index))
    try:
        build_cache(index, spec, decoder, folder, strict, progress, previous=previous, stale=stale, stamps=stamps,
                    stamped_ns=stamped_ns, fmt=fmt)
    except OSError as exc:  # a read-only folder or file system, a full disk
        raise UserInputError(f"cannot write the decoded cache in {folder} ({exc.strerror or exc}); pass a writable "
                             "--cache-dir with room for it (a complete, current cache is read without writing).") from None
    found = _read(folder, index, fmt)
    if found is None:
        raise UserInputError(f"the decoded cache just written in {folder} cannot be read back; check the disk.")
    return (*_opened(folder, found, index, spec, fmt, strict, decoder), previous is not None)


def _strict(skipped: list[str], spec: PreprocessSpec, decoder: str) -> None:
    """--strict on a cache that lists unreadable images: decode the first again, raising its own error."""
    if skipped:
        resized_pixels(skipped[0], spec, decoder)
        raise ImageReadError(f"cannot read image '{skipped[0]}' (skipped when the decoded cache was built).")


def evaluation_store(index: DatasetIndex, spec: PreprocessSpec, cache_dir: str | Path, strict: bool = False,
                     progress: Callable[[int], None] | None = None) -> tuple[CachedImages, np.ndarray, list[str]]:
    """(images, labels, skipped paths) for `evaluate` and `verify --images`: the raw cache decoded at
    full size (EVAL_DECODER), so its squares are exactly data.datasets.decode_all's.

    Raises:
        UserInputError: the preprocessing does not resize (its images have no common store size).
    """
    if spec.resize_mode == "none":
        raise UserInputError(f"--cache-dir: preprocessing '{spec.name}' keeps every image's own size, so there is "
                             "no store size to cache at; run without --cache-dir.")
    return cached_store(index, spec, EVAL_DECODER, cache_dir, strict, progress)[:3]
