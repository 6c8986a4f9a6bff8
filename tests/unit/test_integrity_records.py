"""Files that prove their own integrity, and a safetensors reader as strict as the official one.

* Every written file records a tensor digest and a numpy-computed fingerprint; the numpy forward
  pass equals PyTorch's to float32 rounding for every variant; verify FAILs 'digest' for a
  changed tensor and 'fingerprint' for a model that computes something else.
* The safetensors header rules: each malformed header below is refused by our reader AND by the
  official library (safetensors.safe_open), and the valid one is accepted by both.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories
from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fingerprint import fingerprint_inputs, reference_logits, tensors_digest
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET, PreprocessSpec
from alexnet_lab.core.spec import get_arch
from alexnet_lab.verify import VerifyOptions, run_verify
from alexnet_lab.verify.records import check_fingerprint
from alexnet_lab.weights.files import save_weights
from alexnet_lab.weights.formats.safetensors_io import read_safetensors

SMALL = PreprocessSpec(resize=32, resize_mode="square", crop=32)


def _tensors(variant: str, num_classes: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = get_arch(variant).canonical_shapes(num_classes)
    out = {}
    for key, shape in shapes.items():
        fan_in = math.prod(shapes[key.replace(".bias", ".weight")][1:]) if not key.startswith("bn") else 1
        scale = 1 / math.sqrt(fan_in)
        out[key] = (rng.uniform(-1, 1, shape) * scale).astype(np.float32)
        if key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 2, shape).astype(np.float32)
    return out


@pytest.mark.parametrize("variant, preprocess", [("cifar", SMALL), ("owt", TORCHVISION_IMAGENET), ("original", BVLC_CAFFE)])
def test_numpy_forward_equals_pytorch(variant, preprocess):
    import torch

    from alexnet_lab.frameworks.torch import build_model, from_canonical
    from alexnet_lab.frameworks.torch.model import predict_logits

    tensors = _tensors(variant)
    model = from_canonical(build_model(variant, 10), tensors)
    size = preprocess.crop
    batch = fingerprint_inputs(preprocess, size)
    with torch.device("cpu"):
        ours, theirs = reference_logits(tensors, get_arch(variant), batch), predict_logits(model, batch)
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max() + 1e-7


@pytest.fixture()
def written(tmp_path):
    bundle = WeightBundle(_tensors("cifar"), ModelMeta("cifar", generic_categories(10), SMALL))
    return bundle, save_weights(bundle, tmp_path / "w.safetensors")


def test_written_file_records_digest_and_fingerprint(written):
    bundle, path = written
    read = read_safetensors(path)
    assert read.meta.tensors_sha256 == tensors_digest(bundle.tensors, bundle.arch, 10)
    assert json.loads(read.meta.fingerprint)["input_size"] == 32
    report = run_verify(path, VerifyOptions(framework_parity=False))
    assert report.passed and report.status_of("digest") == "PASS" and report.status_of("fingerprint") == "PASS"


def test_digest_covers_names_shapes_and_every_bit(written):
    bundle, _ = written
    spec, base = bundle.arch, tensors_digest(bundle.tensors, bundle.arch, 10)
    flipped = dict(bundle.tensors, **{"fc8.bias": bundle.tensors["fc8.bias"].copy()})
    flipped["fc8.bias"].view(np.uint32)[0] ^= 1
    assert tensors_digest(flipped, spec, 10) != base


def test_fingerprint_fails_a_model_that_computes_something_else(written):
    bundle, path = written
    read = read_safetensors(path)
    batch = fingerprint_inputs(SMALL, 32)
    right = reference_logits(read.tensors, read.arch, batch)
    permuted = dict(read.tensors)  # what a loader with the wrong fc6 flatten order would run
    permuted["fc6.weight"] = read.tensors["fc6.weight"].reshape(1024, 192, 4, 4).transpose(0, 2, 3, 1).reshape(1024, -1)
    wrong = reference_logits(permuted, read.arch, batch)
    assert check_fingerprint(read, {"torch": right, "keras": right}).status == "PASS"
    failed = check_fingerprint(read, {"torch": right, "keras": wrong})
    assert failed.status == "FAIL" and "keras" in failed.detail


def test_old_files_without_records_skip(tmp_path):
    from safetensors.numpy import save_file

    bundle = WeightBundle(_tensors("cifar"), ModelMeta("cifar", generic_categories(10), SMALL))
    save_file(dict(bundle.tensors), str(tmp_path / "old.safetensors"), metadata=bundle.meta.to_metadata())
    report = run_verify(tmp_path / "old.safetensors", VerifyOptions(framework_parity=False))
    assert report.passed and report.status_of("digest") == "SKIP" and report.status_of("fingerprint") == "SKIP"


def _file(path, header: dict, data: bytes, length: int | None = None):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", length if length is not None else len(text)) + text + data)
    return path


def _entry(shape, begin, end, dtype="F32"):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


MALFORMED = {
    "overlap": ({"a": _entry([2], 0, 8), "b": _entry([2], 0, 8)}, 8),
    "gap": ({"a": _entry([2], 8, 16)}, 16),
    "short-of-buffer": ({"a": _entry([1], 0, 4)}, 8),
    "past-the-end": ({"a": _entry([4], 0, 16)}, 8),
    "length-mismatch": ({"a": _entry([3], 0, 8)}, 8),
    "negative-dim": ({"a": _entry([-2], 0, 8)}, 8),
    "overflow": ({"a": _entry([1 << 62, 1 << 62], 0, 8)}, 8),
    "reversed-offsets": ({"a": _entry([0], 8, 0)}, 8),
    "unknown-dtype": ({"a": _entry([2], 0, 8, "F99")}, 8),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_headers_are_refused_like_the_official_library(tmp_path, name):
    from safetensors import safe_open

    header, data_size = MALFORMED[name]
    meta = ModelMeta("cifar", generic_categories(10), SMALL).to_metadata()
    path = _file(tmp_path / f"{name}.safetensors", {"__metadata__": meta, **header}, bytes(data_size))
    with pytest.raises(Exception):  # noqa: B017 - the official library's own verdict, whatever its type
        with safe_open(str(path), "numpy") as fh:
            [fh.get_tensor(k) for k in fh.keys()]
    with pytest.raises(WeightFormatError):
        read_safetensors(path)


def test_header_length_beyond_the_file_is_refused(tmp_path):
    path = _file(tmp_path / "long.safetensors", {}, b"", length=50_000_000)
    with pytest.raises(WeightFormatError, match="header length"):
        read_safetensors(path)


def test_valid_file_is_accepted_by_both(written):
    from safetensors import safe_open

    _, path = written
    with safe_open(str(path), "numpy") as fh:
        official = {k: fh.get_tensor(k) for k in fh.keys()}
    ours = read_safetensors(path).tensors
    assert official.keys() == ours.keys() and all(np.array_equal(official[k], ours[k]) for k in ours)
