"""Canonical `.safetensors`: the project's own interchange file, tensors plus metadata.

The tensors use the canonical keys and layout; the header metadata holds the variant, class
names and preprocessing (see ModelMeta.to_metadata), so the file alone is enough to predict.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path


def write_safetensors(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    """Write the bundle atomically; returns the path."""
    with atomic_path(path) as tmp:
        save_file(dict(bundle.tensors), str(tmp), metadata=bundle.meta.to_metadata())
    return Path(path)


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The header's __metadata__ without reading the tensors."""
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(fh.read(length))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise WeightFormatError(f"{path} is not a valid .safetensors file ({exc}); re-create or re-download it.") from None
    return dict(header.get("__metadata__") or {})


def read_safetensors(path: str | os.PathLike[str]) -> WeightBundle:
    """Read a canonical .safetensors written by the project.

    Raises:
        WeightFormatError: truncated or corrupt file, or one without the project's metadata.
    """
    meta = ModelMeta.from_metadata(read_safetensors_metadata(path), where=str(path))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightFormatError(f"{path} is truncated or corrupt ({exc}); re-create or re-download it.") from None
    return WeightBundle({k: np.asarray(v) for k, v in tensors.items()}, meta)
