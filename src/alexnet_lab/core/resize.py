"""Bilinear resizing of HxWxC arrays with the PIL / torchvision antialias scheme, in numpy.

Each axis is resized separately with a banded filter: every output row (or column) is a weighted
sum of the few input rows its triangle filter covers, so memory grows with the output, never with
output x input (a dense (out, in) filter matrix for a 1x3000 image resized to 256 x 768000 would
take gigabytes). The taps are computed once per (in, out, antialias) and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def filter_taps(in_size: int, out_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), both (out_size, taps): output i = sum_t weights[i, t] * input[indices[i, t]].

    Half-pixel centres. When shrinking with antialias, the triangle filter is stretched by the
    scale factor so every input pixel contributes (PIL / torchvision antialias=True); otherwise it
    is the plain two-tap bilinear filter with edge clamping. Taps outside [centre - support,
    centre + support] are cut, as in the reference scheme.
    """
    scale = in_size / out_size
    stretch = scale if (antialias and scale > 1.0) else 1.0
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    if not antialias:
        centers = np.clip(centers - 0.5, 0, in_size - 1) + 0.5
    lo = np.maximum(np.trunc(centers - stretch + 0.5), 0).astype(np.int64)
    hi = np.minimum(np.trunc(centers + stretch + 0.5), in_size).astype(np.int64)
    taps = max(1, int((hi - lo).max()))
    index = lo[:, None] + np.arange(taps)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs(index + 0.5 - centers[:, None]) / stretch)
    weights = np.where(index < hi[:, None], weights, 0.0)
    weights = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    index = np.minimum(index, in_size - 1)  # padding taps (weight 0) point at a valid row
    for array in (index, weights):
        array.flags.writeable = False  # cached and shared between calls
    return index, weights


def _resize_axis0(src: np.ndarray, out_size: int, antialias: bool) -> np.ndarray:
    """Resize along the first axis of a 2-D array (rows, rest); uint8 or float32 in, float32 out."""
    index, weights = filter_taps(src.shape[0], out_size, antialias)
    out = np.zeros((out_size, src.shape[1]), np.float32)
    for t in range(index.shape[1]):
        out += weights[:, t : t + 1] * src[index[:, t]]
    return out


def resize_bilinear(image: np.ndarray, height: int, width: int, antialias: bool = True) -> np.ndarray:
    """Resize an HxWxC array to height x width (float32 out), separably: rows then columns."""
    src = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
    h, w, c = src.shape
    if h != height:
        src = _resize_axis0(src.reshape(h, w * c), height, antialias).reshape(height, w, c)
        h = height
    if w != width:
        by_column = np.ascontiguousarray(src.transpose(1, 0, 2)).reshape(w, h * c)
        src = _resize_axis0(by_column, width, antialias).reshape(width, h, c).transpose(1, 0, 2)
    return np.ascontiguousarray(src, dtype=np.float32)
