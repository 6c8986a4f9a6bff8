"""Seeing inside the network, numpy only: which layer outputs can be asked for, and the maths of
Grad-CAM, saliency maps, map agreement and localisation.

Tap names are the stable layer names, meaning the same thing in both frameworks. `conv<i>`,
`fc6` and `fc7` are the outputs *after* their ReLU (the block's output: Keras fuses the
activation into the layer, and a pre-ReLU PyTorch tensor would be overwritten by its in-place
ReLU); `lrn<i>` and `pool<i>` are those layers' outputs; `fc8` is the logits. `input` (the
preprocessed image) is a tap for gradients only. Conv-side maps are N x H x W x C.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.preprocessing import resize_bilinear
from alexnet_lab.core.spec import ArchSpec

INPUT = "input"
METHODS = ("gradcam", "saliency")
POOLS = ("none", "avg", "max")


def tap_names(spec: ArchSpec) -> tuple[str, ...]:
    """Every layer output a caller may ask for, input to output (conv1, [lrn1], [pool1], ..., fc8)."""
    names: list[str] = []
    for i, conv in enumerate(spec.convs, start=1):
        names.append(conv.name)
        if conv.lrn:
            names.append(f"lrn{i}")
        if conv.pool:
            names.append(f"pool{i}")
    return (*names, "fc6", "fc7", "fc8")


def check_taps(spec: ArchSpec, layers: Sequence[str], allow_input: bool = False) -> list[str]:
    """The layers, checked against tap_names (duplicates dropped, order kept).

    Raises:
        UserInputError: no layer, or an unknown name (with a close match).
    """
    if not layers:
        raise UserInputError(f"no layer given; pass --layer with one of {', '.join(tap_names(spec))}.")
    valid = (*tap_names(spec), INPUT) if allow_input else tap_names(spec)
    for name in layers:
        if name not in valid:
            raise unknown_name_error(f"layer of the '{spec.name}' variant", name, valid)
    return list(dict.fromkeys(layers))


def pool_features(array: np.ndarray, pool: str) -> np.ndarray:
    """Global 'avg' or 'max' pooling of an N x H x W x C map to N x C ('none', or a vector, unchanged)."""
    if pool not in POOLS:
        raise unknown_name_error("pool", pool, POOLS)
    if pool == "none" or array.ndim != 4:
        return array
    return array.mean(axis=(1, 2)) if pool == "avg" else array.max(axis=(1, 2))


def gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_c alpha_c A_c), alpha_c = the channel's mean
    gradient. N x h x w x C maps and gradients -> N x h x w maps (unnormalised)."""
    if activations.ndim != 4 or activations.shape != gradients.shape:
        raise UserInputError(f"Grad-CAM needs a conv layer's N x H x W x C map; received shape {activations.shape}. "
                             "Pass a conv or pool layer (e.g. --layer conv5).")
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * activations).sum(axis=-1), 0.0).astype(np.float32)


def saliency(input_gradients: np.ndarray) -> np.ndarray:
    """Simonyan et al. 2013: max over channels of |d score / d input|, N x H x W."""
    return np.abs(input_gradients).max(axis=-1).astype(np.float32)


def normalise_map(heat: np.ndarray) -> np.ndarray:
    """One map scaled to [0, 1] (an all-equal map becomes zeros)."""
    low, high = float(heat.min()), float(heat.max())
    return np.zeros_like(heat, np.float32) if high - low <= 0 else ((heat - low) / (high - low)).astype(np.float32)


def upsample(heat: np.ndarray, size: int) -> np.ndarray:
    """An h x w map resized bilinearly to size x size, normalised to [0, 1]."""
    if heat.shape != (size, size):
        heat = resize_bilinear(heat[:, :, None], size, size, antialias=False)[:, :, 0]
    return normalise_map(heat)


def peak(heat: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum (the first one on ties)."""
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(row), int(col)


def _ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks; tied values share their mean rank (Spearman's convention)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse.ravel()]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of the same size (0 when either is constant)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties get their mean rank)."""
    return pearson(_ranks(np.ravel(a)), _ranks(np.ravel(b)))


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over the larger of the two arrays' max |value| (their scale)."""
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    return float(np.abs(a.astype(np.float64) - b).max() / scale)
