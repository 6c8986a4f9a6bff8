"""Canonical `.safetensors`: the project's own interchange file, tensors plus metadata.

The tensors use the canonical keys and layout; the header metadata holds the variant, class
names and preprocessing (see ModelMeta.to_metadata), so the file alone is enough to predict.
Writing goes through the safetensors library. Reading fills each numpy array straight from the
file (readinto), so loading needs about the file's size in memory, not twice that.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, check_fits
from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


@dataclass(frozen=True)
class TensorEntry:
    """One validated header entry: where its bytes lie relative to the start of the data."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


def write_safetensors(bundle: WeightBundle, path: str | os.PathLike[str], records: bool = True) -> Path:
    """Write the bundle atomically; returns the path.

    Args:
        records: store the tensors' digest and fingerprint (a numpy forward pass, about 1.6 s for
            owt); off only for the project's own short-lived hand-over files.
    """
    with atomic_path(path) as tmp:
        save_file(dict(bundle.tensors), str(tmp), metadata=bundle.metadata() if records else bundle.meta.to_metadata())
    return Path(path)


def _corrupt(path, why: str) -> WeightFormatError:
    return WeightFormatError(f"{path} is truncated or corrupt ({why}); re-create or re-download it.")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):  # a second entry of a name would silently win otherwise
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _read_header(fh, path, file_size: int) -> tuple[dict, int]:
    raw = fh.read(8)
    if len(raw) != 8:
        raise _corrupt(path, "no header")
    (length,) = struct.unpack("<Q", raw)
    if length > MAX_HEADER_BYTES or length > file_size - 8:  # checked before anything is allocated
        raise _corrupt(path, f"header length {length} in a {file_size}-byte file")
    text = fh.read(length)
    if not text.startswith(b"{"):
        raise _corrupt(path, "the header does not start with '{'")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _corrupt(path, f"bad header: {str(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "header is not a JSON object")
    return header, 8 + length


def _metadata(header: dict, path) -> dict[str, str]:
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _corrupt(path, "__metadata__ is not a map of strings")
    return dict(meta)


def _entry(path, name: str, info: object) -> TensorEntry:
    try:
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise TypeError
        dtype = np.dtype(DTYPES[info["dtype"]])
        shape, offsets = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not isinstance(offsets, list) or len(offsets) != 2:
            raise TypeError
        if not all(type(v) is int and v >= 0 for v in (*shape, *offsets)):  # no bools, floats or negatives
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise _corrupt(path, f"bad entry for '{name}'") from None
    entry = TensorEntry(name, dtype, tuple(shape), offsets[0], offsets[1])
    count = math.prod(entry.shape)  # Python ints: no overflow for a hostile shape
    if entry.end < entry.begin or entry.end - entry.begin != count * dtype.itemsize:
        raise _corrupt(path, f"'{name}': shape {list(entry.shape)} of {info['dtype']} does not fill bytes "
                       f"{entry.begin}-{entry.end}")
    return entry


def validate_header(header: dict, path, data_size: int) -> list[TensorEntry]:
    """Every tensor entry, checked as strictly as the safetensors library checks them.

    Sorted by offset, the tensors must start at 0, follow each other without gap or overlap,
    and end exactly at the end of the file; each one's dtype x shape must equal its byte length.
    That bounds what reading can allocate by the file's size (overlapping entries could name
    the same bytes thousands of times).

    Raises:
        WeightFormatError: naming the first entry that breaks a rule.
    """
    entries = sorted((_entry(path, name, info) for name, info in header.items() if name != "__metadata__"),
                     key=lambda e: (e.begin, e.end))
    expected = 0
    for entry in entries:
        if entry.begin != expected:
            what = "overlaps the tensor before it" if entry.begin < expected else "leaves a gap before it"
            raise _corrupt(path, f"'{entry.name}' at byte {entry.begin} {what} (expected {expected})")
        expected = entry.end
    if expected != data_size:
        raise _corrupt(path, f"the tensors cover {expected} bytes of a {data_size}-byte data section")
    return entries


def _read_tensor(fh, path, entry: TensorEntry, data_start: int) -> np.ndarray:
    array = np.empty(entry.shape, dtype=entry.dtype.newbyteorder("<"))
    fh.seek(data_start + entry.begin)
    if fh.readinto(memoryview(array).cast("B")) != array.nbytes:
        raise _corrupt(path, f"'{entry.name}' is cut short")
    return array.astype(entry.dtype.newbyteorder("="), copy=False)


def read_safetensors(path: str | os.PathLike[str]) -> WeightBundle:
    """Read a canonical .safetensors written by the project.

    The whole header is validated (validate_header) before any tensor is read.

    Raises:
        WeightFormatError: truncated or corrupt file, or one without the project's metadata.
    """
    with open(path, "rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        header, data_start = _read_header(fh, path, file_size)
        entries = validate_header(header, path, file_size - data_start)
        meta = ModelMeta.from_metadata(_metadata(header, path), where=str(path))
        # names and shapes against the variant before any data is read (zero-stride stand-ins: no memory)
        check_fits({entry.name: np.broadcast_to(np.float32(0), entry.shape) for entry in entries}, meta)
        tensors = {entry.name: _read_tensor(fh, path, entry, data_start) for entry in entries}
    return WeightBundle(tensors, meta)
