"""Weight files in every format the foundation writes: round trips keep arrays and metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories
from alexnet_lab.core.errors import AlexnetLabError, LayoutError, UserInputError, WeightFormatError
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
from alexnet_lab.core.spec import get_arch
from alexnet_lab.weights.files import load_weights, save_weights


def _bundle(variant: str = "original", num_classes: int = 12) -> WeightBundle:
    rng = np.random.default_rng(11)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) for k, s in get_arch(variant).canonical_shapes(num_classes).items()}
    meta = ModelMeta(variant, tuple(f"kind {i}" for i in range(num_classes)), BVLC_CAFFE, source="unit-test")
    return WeightBundle(tensors, meta)


@pytest.mark.parametrize("name", ["w.safetensors", "w.pth", "w.weights.h5", "w.keras"])
def test_round_trip_keeps_arrays_and_metadata(tmp_path, name):
    bundle = _bundle()
    path = save_weights(bundle, tmp_path / name)
    back = load_weights(path)
    assert back.meta == bundle.meta
    for key, value in bundle.tensors.items():
        assert np.array_equal(back.tensors[key], value), key
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary files left behind


def test_torchvision_file_metadata_is_inferred(torchvision_pth):
    bundle = load_weights(torchvision_pth)
    assert bundle.meta.variant == "owt" and bundle.num_classes == 1000
    assert bundle.meta.preprocess == TORCHVISION_IMAGENET
    assert bundle.meta.categories[281] == "tabby"
    assert len(bundle.meta.source_sha256) == 64


def test_written_pth_loads_into_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) for k, s in get_arch("owt").canonical_shapes(5).items()}
    bundle = WeightBundle(tensors, ModelMeta("owt", generic_categories(5), TORCHVISION_IMAGENET))
    path = save_weights(bundle, tmp_path / "tv.pth")
    model = torchvision.models.alexnet(num_classes=5)
    model.load_state_dict(torch.load(path, weights_only=True))  # strict: every key matches
    assert torch.equal(model.features[0].weight, torch.from_numpy(tensors["conv1.weight"]))


def test_wrong_shapes_list_every_mismatch(tmp_path):
    state = torchvision.models.alexnet().state_dict()
    state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    state["classifier.4.bias"] = torch.zeros(10)
    del state["features.8.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(LayoutError) as info:
        load_weights(tmp_path / "bad.pth")
    text = str(info.value)
    assert "3 problems" in text and "conv2.weight" in text and "fc7.bias" in text and "conv4.bias" in text


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a zip or pickle")
    (tmp_path / "junk.safetensors").write_bytes(b"\x01\x02")
    (tmp_path / "w.bin").write_bytes(b"x")
    for name, error in [("junk.pth", WeightFormatError), ("junk.safetensors", WeightFormatError),
                        ("w.bin", UserInputError), ("missing.pth", UserInputError)]:
        with pytest.raises(error):
            load_weights(tmp_path / name)


def test_truncated_safetensors(tmp_path):
    path = save_weights(_bundle("owt", 3), tmp_path / "w.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlexnetLabError, match="truncated or corrupt"):
        load_weights(path)
