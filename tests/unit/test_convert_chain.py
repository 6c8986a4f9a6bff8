"""`alexnet convert` through every format and back: .npy -> .safetensors -> .weights.h5 -> .pth -> .npy
returns the very same bits (every conversion on the way is a pure permutation of float32 values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.weights.formats.caffe_npy import caffe_layers, load_npy_object
from tests.conftest import run_cli

BVLC_SHAPES = {
    "conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256), "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384), "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000),
}  # fmt: skip


@pytest.fixture(scope="module")
def source_npy(tmp_path_factory) -> Path:
    rng = np.random.default_rng(21)
    layers = {name: [rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01),
                     rng.standard_normal(shape[-1], dtype=np.float32)] for name, shape in BVLC_SHAPES.items()}
    path = tmp_path_factory.mktemp("chain") / "bvlc_alexnet.npy"
    np.save(path, layers, allow_pickle=True)
    return path


@pytest.mark.slow  # the default run keeps each format's round trip (test_formats, test_parity)
def test_convert_chain_is_bit_exact(source_npy):
    folder = source_npy.parent
    chain = [source_npy, folder / "a.safetensors", folder / "a.weights.h5", folder / "a.pth", folder / "back.npy"]
    for src, dst in zip(chain, chain[1:]):
        result = run_cli("convert", str(src), str(dst))
        assert result.returncode == 0, result.stderr
        assert dst.is_file() and f"wrote {dst}" in result.stdout
    first = caffe_layers(load_npy_object(chain[0]))
    last = caffe_layers(load_npy_object(chain[-1]))
    assert list(first) == list(last) == list(BVLC_SHAPES)
    for name in BVLC_SHAPES:
        for a, b in zip(first[name], last[name]):
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), name
    info = run_cli("info", str(chain[-2]), "--json")  # metadata travelled along the chain
    assert info.returncode == 0, info.stderr
    assert '"variant": "original"' in info.stdout and '"name": "bvlc-caffe"' in info.stdout
