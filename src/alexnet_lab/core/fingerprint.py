"""Self-proving weight files: a digest of the tensors and a fingerprint of what they compute.

Every weight file the project writes records, beside its metadata:
  * `tensors_sha256`: sha256 over the canonical tensors in the variant's layer order, each as
    its name, its shape and its float32 little-endian bytes. Any changed bit, swapped layer or
    re-ordered fc6 changes it.
  * `fingerprint`: the logits of FINGERPRINT_IMAGES fixed generated pictures at the network's
    input size, computed here with numpy (an implementation of the forward pass independent of
    both frameworks), float32-rounded. `alexnet verify` recomputes them in PyTorch and Keras:
    a loader or model that maps the weights wrongly gives other logits.

The pictures are a closed formula (no random generator, no resize), normalised with the
weights' own channel order, scale, mean and std, so they are the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from alexnet_lab.core.preprocessing import PreprocessSpec, preprocess
from alexnet_lab.core.spec import BN_EPSILON, ArchSpec, get_arch

DIGEST_KEY = "tensors_sha256"
FINGERPRINT_KEY = "fingerprint"
FINGERPRINT_IMAGES = 2
FINGERPRINT_VERSION = "alexnet-lab/fingerprint-1"  # names the pictures; a new formula needs a new name


def tensors_digest(tensors: Mapping[str, np.ndarray], spec: ArchSpec, num_classes: int) -> str:
    """sha256 of the canonical tensors in the variant's fixed order (see the module docstring)."""
    digest = hashlib.sha256()
    for key in spec.canonical_shapes(num_classes):
        array = np.ascontiguousarray(tensors[key], dtype="<f4")  # no copy for canonical tensors
        digest.update(f"{key}:{list(array.shape)}\0".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def fingerprint_pictures(size: int) -> np.ndarray:
    """FINGERPRINT_IMAGES uint8 RGB pictures, size x size: stripes and rings with colour."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    channels = np.arange(3, dtype=np.float64)[None, None, :]
    stripes = np.sin(2 * np.pi * (3 * x + 2 * y)[..., None] + channels)
    rings = np.cos(2 * np.pi * 5 * np.hypot(x - 0.4, y - 0.6)[..., None] - 2 * channels)
    pictures = [127.5 + 127.5 * stripes, 127.5 + 100 * rings * (x > 0.3)[..., None]]
    return np.stack([np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in pictures])


def fingerprint_inputs(preprocess_spec: PreprocessSpec, size: int) -> np.ndarray:
    """The pictures as the network's input (N x size x size x 3 float32): no resize or crop,
    only the weights' channel order, scale, mean and std."""
    spec = replace(preprocess_spec, resize_mode="none", resize=size, crop=size)
    return np.stack([preprocess(picture, spec) for picture in fingerprint_pictures(size)])


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """NCHW convolution as one matrix product per group (im2col on a strided window view)."""
    n = x.shape[0]
    out_ch, group_in, k, _ = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # N,C,Ho,Wo,k,k
    ho, wo = windows.shape[2:4]
    group_out = out_ch // groups
    outs = []
    for g in range(groups):
        cols = windows[:, g * group_in:(g + 1) * group_in].transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, -1)
        outs.append(cols @ w[g * group_out:(g + 1) * group_out].reshape(group_out, -1).T)
    return (np.concatenate(outs, axis=-1) + b).transpose(0, 3, 1, 2)


def _max_pool(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(-2, -1))


def _lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """torch.nn.LocalResponseNorm: x / (k + alpha / size * sum of x^2 over `size` channels)^beta."""
    squared = np.pad(x * x, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
    window_sum = sliding_window_view(squared, size, axis=1).sum(axis=-1)
    return x / (k + alpha / size * window_sum) ** beta


def _adaptive_avg_pool(x: np.ndarray, out: int) -> np.ndarray:
    """torch.nn.AdaptiveAvgPool2d: cell i spans floor(i*H/out) to ceil((i+1)*H/out)."""
    h, w = x.shape[2:]
    rows = [(i * h // out, -(-(i + 1) * h // out)) for i in range(out)]
    cols = [(j * w // out, -(-(j + 1) * w // out)) for j in range(out)]
    cells = [[x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)) for c0, c1 in cols] for r0, r1 in rows]
    return np.stack([np.stack(row, axis=-1) for row in cells], axis=-2)


def reference_logits(tensors: Mapping[str, np.ndarray], spec: ArchSpec, batch_nhwc: np.ndarray) -> np.ndarray:
    """The network's logits in numpy, float32, eval mode (no dropout; BatchNorm statistics)."""
    x = np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2), dtype=np.float32)
    for i, conv in enumerate(spec.convs, start=1):
        x = _conv(x, tensors[f"{conv.name}.weight"], tensors[f"{conv.name}.bias"], conv.stride, conv.padding, conv.groups)
        if conv.batchnorm:
            gamma, beta, mean, var = (tensors[f"bn{i}.{part}"][:, None, None]
                                      for part in ("weight", "bias", "running_mean", "running_var"))
            x = (x - mean) / np.sqrt(var + np.float32(BN_EPSILON)) * gamma + beta
        x = np.maximum(x, 0)
        if conv.lrn:
            x = _lrn(x, spec.lrn.size, spec.lrn.alpha, spec.lrn.beta, spec.lrn.k)
        if conv.pool:
            x = _max_pool(x, spec.pool_kernel, spec.pool_stride)
    if spec.adaptive_pool:
        x = _adaptive_avg_pool(x, spec.pooled_size)
    x = x.reshape(len(x), -1)  # C,H,W order: the canonical fc6 input order
    for name in ("fc6", "fc7"):
        x = np.maximum(x @ tensors[f"{name}.weight"].T + tensors[f"{name}.bias"], 0)
    return (x @ tensors["fc8.weight"].T + tensors["fc8.bias"]).astype(np.float32)


def integrity_records(tensors: Mapping[str, np.ndarray], variant: str, num_classes: int,
                      preprocess_spec: PreprocessSpec, input_size: int) -> dict[str, str]:
    """The two metadata entries a written file carries (str -> str, like all metadata)."""
    spec = get_arch(variant)
    logits = reference_logits(tensors, spec, fingerprint_inputs(preprocess_spec, input_size))
    record = {"version": FINGERPRINT_VERSION, "input_size": input_size,
              "logits": [[float(v) for v in row] for row in logits]}  # float32 values: exact in JSON
    return {DIGEST_KEY: tensors_digest(tensors, spec, num_classes), FINGERPRINT_KEY: json.dumps(record)}


def parse_fingerprint(text: str) -> tuple[int, np.ndarray] | None:
    """(input size, logits) of a recorded fingerprint; None when absent or of an unknown version."""
    if not text:
        return None
    try:
        record = json.loads(text)
        if record.get("version") != FINGERPRINT_VERSION:
            return None
        return int(record["input_size"]), np.asarray(record["logits"], dtype=np.float32)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
