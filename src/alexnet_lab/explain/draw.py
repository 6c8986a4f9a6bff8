"""Pictures, numpy + PIL only: heat-map overlays, grids of learned filters and of channel maps,
each written as a PNG atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.explain import normalise_map
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import resize_bilinear
from alexnet_lab.core.spec import ArchSpec

# an inferno-like ramp: black, purple, red, orange, yellow (value -> RGB by linear interpolation)
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)
GAP = 2  # pixels between cells of a grid
TOWER_GAP = 12  # pixels between the 2012 network's two towers


def colour_map(heat: np.ndarray) -> np.ndarray:
    """An H x W map in [0, 1] -> H x W x 3 uint8 colours."""
    position = np.clip(heat, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return np.rint(_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The heat map's colours blended over a uint8 RGB image of the same size."""
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colour_map(heat).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_png(pixels: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an H x W x 3 uint8 array as a PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return Path(path)


def upscale(patch: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel repeated factor x factor times (nearest neighbour; factor < 1 counts as 1)."""
    factor = max(1, factor)
    return np.repeat(np.repeat(patch, factor, axis=0), factor, axis=1)


def grid(cells: list[np.ndarray], columns: int, background: int = 255) -> np.ndarray:
    """Equal-sized H x W x 3 uint8 cells in rows of `columns`, GAP pixels apart."""
    height, width = cells[0].shape[:2]
    rows = -(-len(cells) // columns)
    canvas = np.full((rows * (height + GAP) - GAP, columns * (width + GAP) - GAP, 3), background, np.uint8)
    for i, cell in enumerate(cells):
        top, left = (i // columns) * (height + GAP), (i % columns) * (width + GAP)
        canvas[top : top + height, left : left + width] = cell
    return canvas


def _filter_patch(kernel: np.ndarray) -> np.ndarray:
    """(in, kH, kW) -> kH x kW x 3 uint8: RGB for 3 inputs, else the mean over inputs in grey;
    each filter scaled by its own largest |weight| around mid-grey."""
    patch = kernel.transpose(1, 2, 0) if kernel.shape[0] == 3 else np.repeat(kernel.mean(0)[..., None], 3, axis=2)
    scale = max(float(np.abs(patch).max()), 1e-12)
    return np.clip(np.rint(127.5 + 127.5 * patch / scale), 0, 255).astype(np.uint8)


def towers(spec: ArchSpec) -> int:
    """How many towers the network was split into: 2 for the 2012 network (its grouped convs ran
    one group per GPU, conv1's 96 filters 48 and 48), 1 otherwise."""
    return max(conv.groups for conv in spec.convs)


def filter_grid(tensors: Mapping[str, np.ndarray], spec: ArchSpec, layer: str = "conv1", zoom: int = 4,
                columns: int = 8) -> np.ndarray:
    """The learned filters of a conv layer as patches, one block per tower, the towers apart.

    Raises:
        UserInputError: `layer` is not a conv layer of the weights.
    """
    key = f"{layer}.weight"
    convs = [conv.name for conv in spec.convs]
    if layer not in convs or key not in tensors:
        raise UserInputError(f"--layer must be a conv layer ({', '.join(convs)}); received '{layer}'.")
    weight = tensors[key]
    patches = [upscale(_filter_patch(kernel), max(1, zoom * 11 // weight.shape[-1])) for kernel in weight]
    parts = np.array_split(np.arange(len(patches)), towers(spec))
    blocks = [grid([patches[i] for i in part], columns) for part in parts]
    height = max(block.shape[0] for block in blocks)
    spacer = np.full((height, TOWER_GAP, 3), 255, np.uint8)
    padded = [np.pad(b, ((0, height - b.shape[0]), (0, 0), (0, 0)), constant_values=255) for b in blocks]
    out = [padded[0]]
    for block in padded[1:]:
        out += [spacer, block]
    return np.concatenate(out, axis=1)


def activation_grid(image: np.ndarray, maps: np.ndarray, count: int = 16, columns: int = 4) -> tuple[np.ndarray, list[int]]:
    """The input and its `count` most active channel maps (H x W x C, by mean activation), each
    map colour-mapped and scaled to the input's size. Returns (picture, channel indices)."""
    if maps.ndim != 3:
        raise UserInputError(f"--activations needs a conv-side layer (conv1 ... pool5); received a map of shape "
                             f"{maps.shape}.")
    strongest = [int(c) for c in np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:count]]
    factor = max(1, image.shape[0] // maps.shape[0])
    cells = [upscale(colour_map(normalise_map(maps[:, :, c])), factor) for c in strongest]
    side = cells[0].shape[0]
    small = np.clip(np.rint(resize_bilinear(image, side, side)), 0, 255).astype(np.uint8)
    return grid([small, *cells], columns + 1), strongest
