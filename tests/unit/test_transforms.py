"""HWIO transforms (Keras / Caffe-TF layout): checked against independent computations."""

from __future__ import annotations

import numpy as np

from alexnet_lab.core.spec import get_arch
from alexnet_lab.core.transforms import canonical_to_hwio, fc6_from_hwc_rows, fc6_to_hwc_rows, hwio_to_canonical


def test_fc6_permutation_matches_flatten_orders():
    rng = np.random.default_rng(3)
    channels, size, out = 5, 4, 7
    feature_map_chw = rng.standard_normal((channels, size, size))
    weight = rng.standard_normal((out, channels * size * size))
    torch_style = weight @ feature_map_chw.reshape(-1)  # PyTorch flattens C,H,W
    kernel = fc6_to_hwc_rows(weight, channels, size)
    keras_style = feature_map_chw.transpose(1, 2, 0).reshape(-1) @ kernel  # channels-last flatten
    np.testing.assert_allclose(keras_style, torch_style, rtol=1e-12)
    # the formula DESIGN.md states, element by element
    for o, c, h, w in [(0, 0, 0, 0), (3, 4, 1, 2), (6, 2, 3, 3)]:
        assert kernel[(h * size + w) * channels + c, o] == weight[o, c * size * size + h * size + w]
    assert np.array_equal(fc6_from_hwc_rows(kernel, channels, size), weight)


def test_hwio_round_trip_is_bit_exact():
    spec = get_arch("original")
    rng = np.random.default_rng(4)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) for k, s in spec.canonical_shapes(10).items()}
    hwio = canonical_to_hwio(tensors, spec)
    assert hwio["conv2"][0].shape == (5, 5, 48, 256)
    assert hwio["fc6"][0].shape == (9216, 4096)
    back = hwio_to_canonical(hwio, spec)
    assert all(np.array_equal(back[k], tensors[k]) for k in tensors)
