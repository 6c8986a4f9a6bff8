"""The framework-free core: import hygiene, specs, parameter counts, layout validation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from alexnet_lab.core import LayoutError, UserInputError, check_layout, get_arch, infer_variant
from alexnet_lab.core.layout import as_canonical


def test_core_imports_no_framework():
    code = (
        "import sys, alexnet_lab.core, alexnet_lab.core.bundle, alexnet_lab.core.transforms, "
        "alexnet_lab.weights.formats.safetensors_io\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant, expected", [("owt", 61_100_840), ("original", 60_965_224)])
def test_param_counts(variant, expected):
    assert get_arch(variant).param_count(1000) == expected


def test_feature_map_sizes():
    assert get_arch("original").feature_map_size(227) == 6
    assert get_arch("owt").feature_map_size(224) == 6
    with pytest.raises(UserInputError, match="needs a 227x227 input"):
        get_arch("original").check_input_size(224)


def test_unknown_variant_suggests_close_match():
    with pytest.raises(UserInputError, match="Did you mean 'original'"):
        get_arch("orignal")


def _random_canonical(variant: str, num_classes: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s, dtype=np.float32) for k, s in get_arch(variant).canonical_shapes(num_classes).items()}


def test_layout_reports_every_problem_at_once():
    tensors = _random_canonical("owt")
    del tensors["conv3.bias"]
    tensors["conv2.weight"] = np.zeros((192, 64, 3, 3), np.float32)
    tensors["fc6.weight"] = np.zeros((4096, 9000), np.float32)
    tensors["fc9.weight"] = np.zeros(3, np.float32)
    with pytest.raises(LayoutError) as info:
        check_layout(tensors, "owt")
    message = str(info.value)
    assert "4 problems" in message
    assert "missing 'conv3.bias' (expected shape (384,))" in message
    assert "'conv2.weight': expected shape (192, 64, 5, 5), received (192, 64, 3, 3)" in message
    assert "'fc6.weight': expected shape (4096, 9216), received (4096, 9000)" in message
    assert "unexpected key 'fc9.weight'" in message


def test_infer_variant_and_num_classes():
    assert infer_variant(_random_canonical("original", 7)).name == "original"
    assert infer_variant(_random_canonical("owt", 7)).name == "owt"
    out = as_canonical(_random_canonical("owt", 7), "owt")
    assert out["fc8.weight"].shape == (7, 4096) and all(v.dtype == np.float32 for v in out.values())


@pytest.mark.parametrize("variant, size", [("owt", 224), ("original", 227), ("cifar", 32)])
def test_macs_match_torch_flop_counter(variant, size):
    """ArchSpec.macs against PyTorch's own FLOP counter on our model (grouped convs included)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from alexnet_lab.frameworks.torch.model import build_model

    model = build_model(variant, 1000, input_size=size).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    assert get_arch(variant).macs(size, 1000) + _lrn_band_macs(variant, size) == counter.get_total_flops() // 2


def _lrn_band_macs(variant: str, size: int) -> int:
    """Our PyTorch LRN sums its channel window as a banded C x C matrix product (frameworks/torch/
    layers.py), which the FLOP counter counts and ArchSpec.macs (the network's own MACs) does not:
    H * W * C * C per LRN layer, 76 M on the original variant at 227 (10% of its 724 M)."""
    spec, total = get_arch(variant), 0
    for conv in spec.convs:
        size = (size + 2 * conv.padding - conv.kernel) // conv.stride + 1
        if conv.lrn:
            total += size * size * conv.out_channels**2
        if conv.pool:
            size = (size - spec.pool_kernel) // spec.pool_stride + 1
    return total
