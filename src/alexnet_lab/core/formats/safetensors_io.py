"""Canonical `.safetensors`: the project's own interchange file, tensors plus metadata.

The tensors use the canonical keys and layout; the header metadata holds the variant, class
names and preprocessing (see ModelMeta.to_metadata), so the file alone is enough to predict.
Writing goes through the safetensors library. Reading fills each numpy array straight from the
file (readinto), so loading needs about the file's size in memory, not twice that.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path

MAX_HEADER_BYTES = 100_000_000
DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def write_safetensors(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    """Write the bundle atomically; returns the path."""
    with atomic_path(path) as tmp:
        save_file(dict(bundle.tensors), str(tmp), metadata=bundle.meta.to_metadata())
    return Path(path)


def _corrupt(path, why: str) -> WeightFormatError:
    return WeightFormatError(f"{path} is truncated or corrupt ({why}); re-create or re-download it.")


def _read_header(fh, path) -> tuple[dict, int]:
    raw = fh.read(8)
    if len(raw) != 8:
        raise _corrupt(path, "no header")
    (length,) = struct.unpack("<Q", raw)
    if length > MAX_HEADER_BYTES:
        raise _corrupt(path, f"header length {length}")
    try:
        header = json.loads(fh.read(length))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _corrupt(path, f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "header is not a JSON object")
    return header, 8 + length


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The header's __metadata__ without reading the tensors."""
    with open(path, "rb") as fh:
        header, _ = _read_header(fh, path)
    return dict(header.get("__metadata__") or {})


def _read_tensor(fh, path, name: str, info: dict, data_start: int, file_size: int) -> np.ndarray:
    try:
        dtype = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise _corrupt(path, f"bad entry for '{name}'") from None
    count = int(np.prod(shape, dtype=np.int64))
    if end - begin != count * dtype.itemsize or begin < 0 or data_start + end > file_size:
        raise _corrupt(path, f"'{name}' lies outside the file")
    array = np.empty(shape, dtype=dtype.newbyteorder("<"))
    fh.seek(data_start + begin)
    if fh.readinto(memoryview(array).cast("B")) != array.nbytes:
        raise _corrupt(path, f"'{name}' is cut short")
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_safetensors(path: str | os.PathLike[str]) -> WeightBundle:
    """Read a canonical .safetensors written by the project.

    Raises:
        WeightFormatError: truncated or corrupt file, or one without the project's metadata.
    """
    file_size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header, data_start = _read_header(fh, path)
        meta = ModelMeta.from_metadata(dict(header.get("__metadata__") or {}), where=str(path))
        tensors = {name: _read_tensor(fh, path, name, info, data_start, file_size)
                   for name, info in header.items() if name != "__metadata__"}
    return WeightBundle(tensors, meta)
