"""Parity against implementations we did not write: torchvision's AlexNet, torch's and TF's LRN.

Tolerances: our PyTorch owt equals torchvision to 1e-5 (absolute); Keras (TensorFlow backend here,
PyTorch backend in test_keras_torch_backend) is within 1e-4 x the logit scale, with identical top-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from alexnet_lab.core.preprocessing import preprocess_batch
from alexnet_lab.data.images import read_image_rgb
from alexnet_lab.frameworks import keras as kb
from alexnet_lab.frameworks import torch as tb
from alexnet_lab.inference.predict import build_for
from alexnet_lab.weights.files import load_weights


@pytest.fixture(scope="module")
def reference(torchvision_pth):
    model = torchvision.models.alexnet()
    model.load_state_dict(torch.load(torchvision_pth, weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def batch(image_paths):
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET

    return preprocess_batch([read_image_rgb(p) for p in image_paths], TORCHVISION_IMAGENET)


def _reference_logits(model, batch_nhwc):
    with torch.no_grad():
        return model(torch.from_numpy(batch_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def _top5(logits):
    return np.argsort(-logits, axis=1, kind="stable")[:, :5]


def test_torch_owt_equals_torchvision(torchvision_pth, reference, batch):
    bundle = load_weights(torchvision_pth)
    ours = tb.predict_logits(build_for(bundle, "torch"), batch)
    ref = _reference_logits(reference, batch)
    assert len(batch) >= 8
    assert np.abs(ours - ref).max() <= 1e-5
    assert np.array_equal(_top5(ours), _top5(ref))


def test_keras_owt_matches_torchvision(torchvision_pth, reference, batch):
    bundle = load_weights(torchvision_pth)
    ours = kb.predict_logits(build_for(bundle, "keras"), batch)
    ref = _reference_logits(reference, batch)
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-4 * scale
    assert np.array_equal(_top5(ours), _top5(ref))


def test_keras_owt_adaptive_pool_on_other_sizes(reference):
    """For inputs other than 224 the adaptive average pool must match torch's bins."""
    canonical = tb.to_canonical(tb.from_canonical(tb.build_model("owt"), _canonical_of(reference)))
    for size in (256, 300):
        model = kb.AlexNet(classifier_activation=None, input_shape=(size, size, 3))
        kb.from_canonical(model, canonical)
        x = np.random.default_rng(size).standard_normal((2, size, size, 3), dtype=np.float32)
        ref = _reference_logits(reference, x)
        assert np.abs(kb.predict_logits(model, x) - ref).max() <= 1e-4 * np.abs(ref).max()


def _canonical_of(torchvision_model):
    from alexnet_lab.frameworks.torch.convert import state_dict_to_canonical

    return state_dict_to_canonical(torchvision_model.state_dict(), tb.build_model("owt"))


def test_original_torch_vs_keras():
    torch.manual_seed(1)
    model = tb.build_model("original").eval()
    canonical = tb.to_canonical(model)
    canonical["fc8.weight"] = canonical["fc8.weight"] * 50  # spread the logits
    tb.from_canonical(model, canonical)
    keras_model = kb.from_canonical(kb.build_model("original"), canonical)
    x = np.random.default_rng(5).uniform(-120, 130, size=(8, 227, 227, 3)).astype(np.float32)  # Caffe-scale input
    ref = tb.predict_logits(model, x)
    ours = kb.predict_logits(keras_model, x)
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.array_equal(_top5(ours), _top5(ref))


@pytest.mark.parametrize("size", [5, 3, 4])
def test_keras_lrn_matches_torch_and_tf(size):
    import tensorflow as tf

    alpha, beta, k = 1e-4, 0.75, 1.0
    x = np.random.default_rng(size).uniform(-300, 300, size=(2, 7, 9, 96)).astype(np.float32)
    ours = np.asarray(kb.LocalResponseNormalization(size, alpha, beta, k)(x))
    torch_ref = torch.nn.LocalResponseNorm(size, alpha, beta, k)(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(ours, torch_ref.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    if size % 2 == 1:  # TF's window is symmetric: only odd sizes have a TF equivalent
        tf_ref = tf.nn.local_response_normalization(x, depth_radius=(size - 1) // 2, bias=k, alpha=alpha / size, beta=beta)
        np.testing.assert_allclose(ours, tf_ref.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [5, 3, 4])
@pytest.mark.parametrize("channels_last", [True, False])
def test_torch_lrn_matches_torch_nn(size, channels_last):
    """Our LocalResponseNorm (a banded matrix product over channels, bf16-capable) against
    torch.nn.LocalResponseNorm: forward and input gradient within 1e-6 relative in float32."""
    from alexnet_lab.frameworks.torch.layers import LocalResponseNorm

    alpha, beta, k = 1e-4, 0.75, 1.0
    generator = torch.Generator().manual_seed(size)
    x = (torch.rand(2, 96, 7, 9, generator=generator) * 600 - 300)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 96, 7, 9, generator=generator)
    results = []
    for layer in (LocalResponseNorm(size, alpha, beta, k), torch.nn.LocalResponseNorm(size, alpha, beta, k)):
        leaf = x.clone().requires_grad_()
        out = layer(leaf)
        results.append((out.detach(), torch.autograd.grad(out, leaf, grad)[0]))
    (ours, our_grad), (ref, ref_grad) = results
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(our_grad, ref_grad, rtol=1e-6, atol=1e-6 * ref_grad.abs().max().item())
    in_bf16 = LocalResponseNorm(size, alpha, beta, k)(x.to(torch.bfloat16))  # torch.nn's has no bf16 CPU kernel
    assert in_bf16.dtype == torch.bfloat16
    torch.testing.assert_close(in_bf16.float(), ref, rtol=1e-2, atol=1e-2 * ref.abs().max().item())


def test_round_trips_are_bit_exact():
    torch.manual_seed(2)
    for variant in ("owt", "original", "cifar-wide"):  # cifar-wide: BatchNorm statistics too
        canonical = tb.to_canonical(tb.build_model(variant, num_classes=17))
        via_torch = tb.to_canonical(tb.from_canonical(tb.build_model(variant, num_classes=17), canonical))
        via_keras = kb.to_canonical(kb.from_canonical(kb.build_model(variant, num_classes=17), canonical))
        for key, value in canonical.items():
            assert np.array_equal(via_torch[key], value), key
            assert np.array_equal(via_keras[key], value), key
