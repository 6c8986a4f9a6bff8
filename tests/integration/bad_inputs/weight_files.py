"""Cases: hostile and damaged weight files (.safetensors, .npy, .pth, .keras, .weights.h5)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from tests.integration.bad_inputs.corpus import Case, _deflate_bomb, _info, _meta, _raw_safetensors, case

# ---------------------------------------------------------------- safetensors

@case("empty.safetensors")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("truncated.safetensors")
def _(name, folder, good):
    data = good["cifar"].read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    return Case(name, _info(folder / name), words="truncated or corrupt")


@case("wrong-magic.safetensors")
def _(name, folder, good):
    (folder / name).write_bytes(good["a.png"].read_bytes())
    return Case(name, _info(folder / name), words="corrupt")


@case("huge-header-length.safetensors")
def _(name, folder, good):
    return Case(name, _info(_raw_safetensors(folder / name, {}, length=1 << 60)), words="header length")


@case("header-longer-than-file.safetensors")
def _(name, folder, good):
    return Case(name, _info(_raw_safetensors(folder / name, {}, length=90_000_000)), words="header length")


@case("deeply-nested-header.safetensors")
def _(name, folder, good):
    text = b"{\"a\":" + b"[" * 200_000 + b"]" * 200_000 + b"}"
    (folder / name).write_bytes(struct.pack("<Q", len(text)) + text)
    return Case(name, _info(folder / name), words="bad header")


@case("negative-shape.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "conv1.weight": {"dtype": "F32", "shape": [-4, 1], "data_offsets": [0, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="bad entry")


@case("overflowing-shape.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(),
              "conv1.weight": {"dtype": "F32", "shape": [1 << 62, 1 << 62, 4], "data_offsets": [0, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="does not fill")


@case("overlapping-offsets.safetensors")
def _(name, folder, good):
    """Every tensor entry pointing at the same bytes: 1000 entries would read 1000x the file."""
    entries = {f"t{i}": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]} for i in range(1000)}
    header = {"__metadata__": _meta(), **entries}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(4 << 20))), words="overlaps")


@case("gap-in-offsets.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="gap")


@case("offsets-past-the-end.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "a": {"dtype": "F32", "shape": [1 << 28], "data_offsets": [0, 1 << 30]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="cover")


@case("duplicate-keys.safetensors")
def _(name, folder, good):
    entry = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    text = b'{"a": ' + entry + b', "a": ' + entry + b'}'
    (folder / name).write_bytes(struct.pack("<Q", len(text)) + text + bytes(4))
    return Case(name, _info(folder / name), words="duplicate key")


@case("no-metadata.safetensors")
def _(name, folder, good):
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(4))), words="no alexnet-lab metadata")


@case("symlink-to-dev-zero.safetensors")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _info(folder / name), words="device")


@case("fifo.safetensors")
def _(name, folder, good):
    os.mkfifo(folder / name)
    return Case(name, _info(folder / name), words="FIFO")


@case("folder.safetensors")
def _(name, folder, good):
    (folder / name).mkdir()
    return Case(name, _info(folder / name), words="folder")


# ---------------------------------------------------------------- pickles (.npy, .pth)

class _Payload:
    """Pickles as a call to os.system: what a malicious weight file would run on load."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {marker}"

    def __reduce__(self):
        return os.system, (self.command,)


@case("pickle-with-code.npy")
def _(name, folder, good):
    np.save(folder / name, {"conv1": [_Payload(folder / "npy-ran"), np.zeros(3, np.float32)]}, allow_pickle=True)
    return Case(name, _info(folder / name), words="refuses")


@case("pickle-with-code.pth")
def _(name, folder, good):
    import torch

    torch.save({"features.0.weight": torch.zeros(3), "classifier.6.weight": _Payload(folder / "pth-ran")}, folder / name)
    return Case(name, _info(folder / name), words="refused")


@case("plain-array.npy")
def _(name, folder, good):
    np.save(folder / name, np.zeros((4, 4), np.float32))
    return Case(name, _info(folder / name), words="plain")


@case("huge-header.npy")
def _(name, folder, good):
    (folder / name).write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{" * 64)
    return Case(name, _info(folder / name), words="corrupt")


@case("empty.npy")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("empty.pth")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("zip-bomb.pth")
def _(name, folder, good):
    return Case(name, _info(_deflate_bomb(folder / name, "archive/data/0", 1 << 30)), words="refused before decoding")


# ---------------------------------------------------------------- Keras (.keras, .weights.h5)

@case("zip-bomb.keras")
def _(name, folder, good):
    extra = {"config.json": b"{}", "metadata.json": b"{}"}
    return Case(name, _info(_deflate_bomb(folder / name, "model.weights.h5", (4 << 30) - (16 << 20), extra)),
                words="refused before decoding")


@case("metadata-bomb.keras")
def _(name, folder, good):
    return Case(name, _info(_deflate_bomb(folder / name, "alexnet_lab.json", 1 << 30)), words="refused before decoding")


@case("symlink-to-dev-zero.keras")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _info(folder / name), words="device")


@case("empty.keras")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("fill-value-bomb.weights.h5")
def _(name, folder, good):
    """A dataset of 2^30 floats with no chunk written: a few KB that read as 4 GB of zeros."""
    import h5py

    with h5py.File(folder / name, "w") as fh:
        fh.create_dataset("layers/conv1/vars/0", shape=(1 << 30,), dtype="f4", chunks=(1 << 16,))
    return Case(name, _info(folder / name), words="refused before decoding")


@case("empty.weights.h5")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


