"""Loading pretrained weights for fine-tuning: partial loads, re-initialised heads, skip_layers.

The weights are random but full size (the layout check allows nothing smaller); every loaded
layer must equal the file bit for bit, every re-initialised one must keep the model's fresh
values and the new shape.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, imagenet_categories
from alexnet_lab.core.errors import LayoutError, UserInputError
from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks import get_backend
from alexnet_lab.weights.pretrained import load_pretrained, select_for_finetune


@pytest.fixture(scope="module")
def bundle() -> WeightBundle:
    rng = np.random.default_rng(7)
    tensors = {k: (rng.standard_normal(s, dtype=np.float32) * 0.01) for k, s in get_arch("owt").canonical_shapes(1000).items()}
    return WeightBundle(tensors, ModelMeta("owt", imagenet_categories(), TORCHVISION_IMAGENET, source="unit-test"))


def test_select_leaves_out_head_and_skipped_layers(bundle, caplog):
    with caplog.at_level(logging.INFO, logger="alexnet_lab.weights.pretrained"):
        tensors, reinit = select_for_finetune(bundle, num_classes=10, skip_layers=["fc7"])
    assert reinit == ("fc7", "fc8")
    assert sorted({k.split(".")[0] for k in tensors}) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6"]
    assert "fc8 re-initialised for 10 classes (weights have 1000)" in caplog.text
    assert "fc7" in caplog.text


def test_same_classes_loads_everything(bundle):
    tensors, reinit = select_for_finetune(bundle)
    assert reinit == () and set(tensors) == set(bundle.tensors)


@pytest.mark.parametrize("bad, hint", [("fc77", "Did you mean 'fc7'"), ("Conv2", "Did you mean 'conv2'")])
def test_unknown_skip_layer_suggests_a_close_match(bundle, bad, hint):
    with pytest.raises(UserInputError, match=hint) as info:
        select_for_finetune(bundle, skip_layers=(bad,))
    assert "\n" not in str(info.value)


def test_bad_num_classes(bundle):
    with pytest.raises(UserInputError, match="at least 1"):
        select_for_finetune(bundle, num_classes=0)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_finetune_load_keeps_fresh_layers(bundle, framework):
    backend = get_backend(framework)
    model = backend.build_model("owt", num_classes=10)
    fresh = backend.to_canonical(model)
    reinit = load_pretrained(model, framework, bundle, skip_layers=("fc7",))
    assert reinit == ["fc7", "fc8"]
    loaded = backend.to_canonical(model)
    for key in bundle.tensors:
        layer = key.split(".")[0]
        if layer in reinit:
            assert not np.array_equal(loaded[key], bundle.tensors[key]), key
            assert np.array_equal(loaded[key], fresh[key]), key  # the fresh initialisation is kept
        else:
            assert np.array_equal(loaded[key], bundle.tensors[key]), key
    assert loaded["fc8.weight"].shape == (10, 4096) and loaded["fc8.bias"].shape == (10,)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_partial_lists_every_mismatch(bundle, framework):
    backend = get_backend(framework)
    model = backend.build_model("owt", num_classes=10)
    tensors = {
        "conv1.weight": np.zeros((64, 3, 7, 7), np.float32),
        "conv1.bias": bundle.tensors["conv1.bias"],
        "fc8.weight": bundle.tensors["fc8.weight"],  # 1000 classes, the model has 10
        "fc8.bias": bundle.tensors["fc8.bias"],
        "conv2.weight": bundle.tensors["conv2.weight"],  # without its bias
        "fc9.weight": np.zeros(3, np.float32),
    }
    with pytest.raises(LayoutError) as info:
        backend.from_canonical(model, tensors, partial=True)
    text = str(info.value)
    assert "\n" not in text and "5 problems" in text
    for part in ("'conv1.weight': expected shape (64, 3, 11, 11)", "'fc8.weight': expected shape (10, 4096)",
                 "'fc8.bias'", "missing 'conv2.bias'", "unexpected key 'fc9.weight'"):
        assert part in text, part


def test_keras_without_top_loads_the_convolutions(bundle):
    kb = get_backend("keras")
    model = kb.AlexNet(include_top=False, variant="owt", classifier_activation=None)
    assert load_pretrained(model, "keras", bundle) == []
    loaded = kb.to_canonical(model)
    assert set(loaded) == {f"conv{i}.{p}" for i in range(1, 6) for p in ("weight", "bias")}
    assert all(np.array_equal(loaded[k], bundle.tensors[k]) for k in loaded)


def test_wrong_variant_or_class_count_is_refused(bundle):
    tb = get_backend("torch")
    with pytest.raises(UserInputError, match="variant='owt'"):
        load_pretrained(tb.build_model("original"), "torch", bundle)
    with pytest.raises(UserInputError, match="num_classes=5 but the model's fc8 has 10"):
        load_pretrained(tb.build_model("owt", num_classes=10), "torch", bundle, num_classes=5)
