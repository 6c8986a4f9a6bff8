"""The `cifar-wide` variant: AlexNet's own conv widths at 32x32, built from its spec in both
frameworks, told apart from `cifar` by its shapes, and carried by every weight format `cifar` is."""

from __future__ import annotations

import numpy as np
import pytest

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.layout import infer_variant
from alexnet_lab.core.preprocessing import CIFAR_32 as CIFAR_PREPROCESS
from alexnet_lab.core.spec import CIFAR, get_arch
from alexnet_lab.train.job import scratch_preprocess
from alexnet_lab.weights.files import load_weights, save_weights


def _bundle(variant: str, num_classes: int = 10) -> WeightBundle:
    rng = np.random.default_rng(3)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) * 0.05
               for k, s in get_arch(variant).canonical_shapes(num_classes).items()}
    for key in tensors:  # BatchNorm statistics a network could have: positive variances
        if key.endswith("running_var"):
            tensors[key] = np.abs(tensors[key]) + 0.5
    meta = ModelMeta(variant, tuple(f"c{i}" for i in range(num_classes)), CIFAR_PREPROCESS, source="unit-test")
    return WeightBundle(tensors, meta)


def test_the_spec_is_cifar_at_alexnets_widths():
    wide = get_arch("cifar-wide")
    assert [c.out_channels for c in wide.convs] == [96, 256, 384, 384, 256]
    assert [(c.kernel, c.stride, c.padding, c.pool, c.batchnorm) for c in wide.convs] == \
        [(c.kernel, c.stride, c.padding, c.pool, c.batchnorm) for c in CIFAR.convs]
    assert (wide.hidden, wide.pooled_size, wide.input_size, wide.num_classes) == (1024, 4, 32, 10)
    assert wide.param_count(10) == 8_587_018
    assert scratch_preprocess("cifar-wide", 0) == CIFAR_PREPROCESS
    assert infer_variant(_bundle("cifar-wide").tensors).name == "cifar-wide"
    assert infer_variant(_bundle("cifar").tensors).name == "cifar"


def test_both_frameworks_build_it_and_agree():
    from alexnet_lab.frameworks import keras as kb
    from alexnet_lab.frameworks import torch as tb

    canonical = _bundle("cifar-wide").tensors
    torch_model = tb.from_canonical(tb.build_model("cifar-wide", 10), canonical).eval()
    keras_model = kb.from_canonical(kb.build_model("cifar-wide", 10), canonical)
    assert kb.model_variant(keras_model) == tb.model_variant(torch_model) == "cifar-wide"
    x = np.random.default_rng(5).standard_normal((4, 32, 32, 3)).astype(np.float32)
    ref, ours = tb.predict_logits(torch_model, x), kb.predict_logits(keras_model, x)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("name", ["w.safetensors", "w.pth", "w.weights.h5", "w.keras"])
def test_every_format_of_cifar_carries_it(tmp_path, name):
    bundle = _bundle("cifar-wide")
    back = load_weights(save_weights(bundle, tmp_path / name))
    assert back.meta.variant == "cifar-wide" and back.num_classes == 10
    assert all(np.array_equal(back.tensors[k], v) for k, v in bundle.tensors.items())


def test_model_names_and_default_class_count():
    import alexnet_lab
    from alexnet_lab.frameworks.torch.hub import create_model

    assert "alexnet_cifar_wide" in alexnet_lab.list_models()
    model = create_model("alexnet_cifar_wide")
    assert model.spec.name == "cifar-wide" and model.num_classes == 10
