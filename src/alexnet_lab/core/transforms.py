"""Pure layout transforms between canonical (PyTorch) arrays and the HWIO layout.

HWIO is what Keras kernels and the Caffe-TF `.npy` files use: conv kernels (kH, kW, in/groups,
out) and dense kernels (in, out), with fc6's rows in H,W,C order because both flatten a
channels-last feature map. Canonical conv weights are (out, in/groups, kH, kW), dense (out, in),
and fc6's columns are in C,H,W order (PyTorch flattens NCHW). Every transform here is a pure
permutation, so round trips are bit-exact.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alexnet_lab.core.spec import ArchSpec


def conv_to_hwio(weight: np.ndarray) -> np.ndarray:
    """(out, in, kH, kW) -> (kH, kW, in, out): the spatial axes lead in channels-last kernels."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def conv_from_hwio(kernel: np.ndarray) -> np.ndarray:
    """(kH, kW, in, out) -> (out, in, kH, kW)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def dense_to_io(weight: np.ndarray) -> np.ndarray:
    """(out, in) -> (in, out): Keras and Caffe-TF compute x @ W, PyTorch x @ W.T."""
    return np.ascontiguousarray(weight.T)


def dense_from_io(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.T)


def fc6_to_hwc_rows(weight: np.ndarray, channels: int, size: int) -> np.ndarray:
    """Canonical fc6 (out, C*H*W) -> (H*W*C, out) for a layer fed by a channels-last flatten.

    hwc[(h*W + w)*C + c, o] = canonical[o, c*H*W + h*W + w]: reshape the columns to (C, H, W),
    move C last, then transpose to (in, out).
    """
    out = weight.shape[0]
    return np.ascontiguousarray(weight.reshape(out, channels, size, size).transpose(2, 3, 1, 0).reshape(-1, out))


def fc6_from_hwc_rows(kernel: np.ndarray, channels: int, size: int) -> np.ndarray:
    """Inverse of :func:`fc6_to_hwc_rows`: (H*W*C, out) -> (out, C*H*W)."""
    out = kernel.shape[1]
    return np.ascontiguousarray(kernel.reshape(size, size, channels, out).transpose(3, 2, 0, 1).reshape(out, -1))


def canonical_to_hwio(tensors: Mapping[str, np.ndarray], spec: ArchSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Canonical tensors -> {layer: (kernel, bias)} in HWIO layout, for the layers present."""
    layers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    c5 = spec.convs[-1].out_channels
    for name in spec.layer_names:
        if f"{name}.weight" not in tensors:
            continue
        weight, bias = tensors[f"{name}.weight"], np.ascontiguousarray(tensors[f"{name}.bias"])
        if name in spec.conv_names:
            layers[name] = (conv_to_hwio(weight), bias)
        elif name == "fc6":
            layers[name] = (fc6_to_hwc_rows(weight, c5, spec.pooled_size), bias)
        else:
            layers[name] = (dense_to_io(weight), bias)
    return layers


def hwio_to_canonical(layers: Mapping[str, tuple[np.ndarray, np.ndarray]], spec: ArchSpec) -> dict[str, np.ndarray]:
    """{layer: (kernel, bias)} in HWIO layout -> canonical tensors (not validated here)."""
    tensors: dict[str, np.ndarray] = {}
    c5 = spec.convs[-1].out_channels
    for name, (kernel, bias) in layers.items():
        if name in spec.conv_names:
            weight = conv_from_hwio(kernel)
        elif name == "fc6":
            weight = fc6_from_hwc_rows(kernel, c5, spec.pooled_size)
        else:
            weight = dense_from_io(kernel)
        tensors[f"{name}.weight"], tensors[f"{name}.bias"] = weight, np.ascontiguousarray(bias)
    return tensors
