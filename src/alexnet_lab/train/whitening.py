"""A data-dependent first layer: conv1 initialised to whiten the training images' patches.

The covariance of conv1-sized patches (kH x kW x 3, normalised as the model sees them) is taken
over a seeded sample of training images; its leading eigenvectors, each divided by the square
root of its eigenvalue, give filters whose responses are decorrelated and of unit variance, and
each filter comes with its negative (so a ReLU keeps both signs). conv1 keeps its shape, so the
network stays AlexNet-shaped and every weight file reads as before; the filters stay trainable.
The filters are large (1 / sqrt of small eigenvalues), so with BatchNorm after conv1 their
gradient steps are small relative to them: the layer moves slowly from where the data put it.

Framework-neutral numpy: the trainers load the result with their `from_canonical(partial=True)`.
"""

from __future__ import annotations

import logging

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import crop_offsets, normalised
from alexnet_lab.core.spec import ArchSpec

log = logging.getLogger(__name__)

SAMPLE_IMAGES = 2048  # images whose patches make the covariance
EPSILON = 5e-4  # added to each eigenvalue: bounds the gain on directions the data barely varies in


def _center_views(images, picked: np.ndarray, crop: int) -> np.ndarray:
    """uint8 crop x crop centre views of the picked stored images (stored at >= crop)."""
    views = []
    for index in picked:
        image = np.asarray(images[int(index)])
        top, left = crop_offsets(image.shape[0], image.shape[1], crop)
        views.append(image[top : top + crop, left : left + crop])
    return np.stack(views)


def patch_covariance(views: np.ndarray, norm: tuple[np.ndarray, np.ndarray, bool], kernel: int,
                     stride: int = 1) -> np.ndarray:
    """Covariance (D x D, D = 3 * kernel^2, canonical (channel, row, column) order) of the
    kernel x kernel patches of the normalised views at conv1's stride (the patches conv1 sees),
    accumulated image by image in float64."""
    dim = 3 * kernel * kernel
    total, outer, count = np.zeros(dim), np.zeros((dim, dim)), 0
    for view in views:
        x = normalised(view, *norm).transpose(2, 0, 1)  # C, H, W
        patches = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
        rows = patches.transpose(1, 2, 0, 3, 4).reshape(-1, dim).astype(np.float64)
        total += rows.sum(0)
        outer += rows.T @ rows
        count += len(rows)
    mean = total / count
    return outer / count - np.outer(mean, mean)


def whitening_filters(covariance: np.ndarray, filters: int, kernel: int, epsilon: float = EPSILON) -> np.ndarray:
    """(filters, 3, kernel, kernel): the leading filters // 2 whitening directions and their
    negatives, interleaved (+v1, -v1, +v2, -v2, ...)."""
    dim = covariance.shape[0]
    if filters % 2 or filters // 2 > dim:
        raise UserInputError(f"--conv1-init whiten needs an even conv1 width of at most {2 * dim} for "
                             f"{kernel}x{kernel} kernels; this variant's conv1 has {filters}. Use --conv1-init random.")
    values, vectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(values)[::-1][: filters // 2]
    scaled = vectors[:, order].T / np.sqrt(np.maximum(values[order], 0) + epsilon)[:, None]
    both = np.empty((filters, dim))
    both[0::2], both[1::2] = scaled, -scaled
    return both.reshape(filters, 3, kernel, kernel).astype(np.float32)


def whitened_conv1(images, arch: ArchSpec, norm: tuple[np.ndarray, np.ndarray, bool], crop: int,
                   seed: int) -> dict[str, np.ndarray]:
    """Canonical {'conv1.weight', 'conv1.bias'} whitening the patches of a seeded sample of the
    training store `images` (uint8, stored at >= crop)."""
    conv = arch.convs[0]
    if conv.groups != 1:
        raise UserInputError(f"--conv1-init whiten needs an ungrouped conv1; '{arch.name}' groups it. "
                             "Use --conv1-init random.")
    count = len(images)
    if count == 0:
        raise UserInputError("--conv1-init whiten needs training images; the training split is empty.")
    picked = np.sort(np.random.default_rng([seed, 0x57]).permutation(count)[:SAMPLE_IMAGES])
    views = _center_views(images, picked, crop)
    covariance = patch_covariance(views, norm, conv.kernel, conv.stride)
    weight = whitening_filters(covariance, conv.out_channels, conv.kernel)
    log.info("conv1 whitened from the patches of %d training images", len(picked))
    return {"conv1.weight": weight, "conv1.bias": np.zeros(conv.out_channels, np.float32)}


def initial_conv1(config, stores: dict, arch: ArchSpec, norm: tuple[np.ndarray, np.ndarray, bool],
                  crop: int) -> dict[str, np.ndarray] | None:
    """The canonical conv1 tensors a trainer loads over its fresh model (None for --conv1-init random).
    Computed on resume as well, so a run that resumes before its first checkpoint starts as the
    uninterrupted one did; a checkpoint, when there is one, then replaces them."""
    if config.conv1_init != "whiten":
        return None
    return whitened_conv1(stores["train"][0], arch, norm, crop, config.seed)
