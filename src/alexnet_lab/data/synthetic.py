"""A procedurally generated image-classification dataset that needs no download.

Twelve classes of shapes and textures, each drawn with random colours, size, position, rotation,
background gradient and pixel noise, so the classes overlap in raw pixel space: pixel-space
classifiers stay far below a small CNN trained for a few CPU minutes (the figures are in
docs/data.md, 'The synthetic data set'). Image ``i`` is drawn from ``np.random.default_rng([seed, i])`` alone, so any image
can be regenerated on its own, in any order, at any size: shapes are defined on [0, 1)
coordinates and rasterised with one-pixel soft edges (8x8 up to 227x227 and beyond).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_lab.core.errors import UserInputError

SYNTHETIC_CLASSES = (
    "circle", "square", "triangle", "cross", "ring", "horizontal_stripes", "vertical_stripes",
    "checkerboard", "diagonal_stripes", "dots", "star", "crescent",
)  # fmt: skip
_MIN_SIZE = 8  # below this a triangle and a circle are the same four pixels


@dataclass(frozen=True)
class SyntheticSpec:
    """Which synthetic images to make.

    Attributes:
        num_classes: the first num_classes of SYNTHETIC_CLASSES (2..12).
        size: image height and width in pixels.
        per_class: images per class; image i has label i % num_classes.
        seed: images of different seeds are independent draws (use one seed per split).
    """

    num_classes: int = 10
    size: int = 32
    per_class: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(SYNTHETIC_CLASSES):
            raise UserInputError(
                f"expected num_classes in 2..{len(SYNTHETIC_CLASSES)}; received {self.num_classes}."
            )
        if self.size < _MIN_SIZE:
            raise UserInputError(f"expected size >= {_MIN_SIZE} pixels; received {self.size}.")
        if self.per_class < 1:
            raise UserInputError(f"expected per_class >= 1; received {self.per_class}.")
        if self.seed < 0:
            raise UserInputError(f"expected a non-negative seed; received {self.seed}.")

    @property
    def num_images(self) -> int:
        return self.num_classes * self.per_class


def synthetic_class_names(num_classes: int = 10) -> tuple[str, ...]:
    """Names of the first `num_classes` synthetic classes, in label order."""
    SyntheticSpec(num_classes=num_classes)  # validates the range with the usual message
    return SYNTHETIC_CLASSES[:num_classes]


# Each drawer gets pattern coordinates (u, v) centred on the object and rotated, the object's
# radius r and the generator; it returns a signed distance in [0, 1) units, > 0 inside.
Drawer = Callable[[np.ndarray, np.ndarray, float, np.random.Generator], np.ndarray]


def _circle(u, v, r, rng):
    return r - np.hypot(u, v)


def _square(u, v, r, rng):
    return 0.85 * r - np.maximum(np.abs(u), np.abs(v))


def _triangle(u, v, r, rng):
    # equilateral triangle with circumradius r: inside all three edges at distance r/2
    normals = [(math.cos(a), math.sin(a)) for a in (math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    return r / 2 - np.max([nx * u + ny * v for nx, ny in normals], axis=0)


def _cross(u, v, r, rng):
    arm = 0.3 * r
    return np.maximum(np.minimum(r - np.abs(u), arm - np.abs(v)), np.minimum(arm - np.abs(u), r - np.abs(v)))


def _ring(u, v, r, rng):
    return 0.25 * r - np.abs(np.hypot(u, v) - 0.72 * r)


def _star(u, v, r, rng):
    return r * (0.6 + 0.4 * np.cos(5 * np.arctan2(v, u))) - np.hypot(u, v)


def _crescent(u, v, r, rng):
    return np.minimum(r - np.hypot(u, v), np.hypot(u - 0.5 * r, v) - 0.8 * r)


def _period(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _stripes(u, v, r, rng):
    period = _period(rng, 0.1, 0.2)
    # sin(.) * period / 2pi approximates the distance to the nearest stripe edge
    return np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)) * period / (2 * np.pi)


def _checkerboard(u, v, r, rng):
    period = _period(rng, 0.14, 0.25)
    phase = rng.uniform(0, 2 * np.pi, 2)
    return np.sin(2 * np.pi * u / period + phase[0]) * np.sin(2 * np.pi * v / period + phase[1]) * period / 6


def _dots(u, v, r, rng):
    period = _period(rng, 0.14, 0.25)
    fu = np.mod(u / period + rng.uniform(), 1.0) - 0.5
    fv = np.mod(v / period + rng.uniform(), 1.0) - 0.5
    return (0.3 - np.hypot(fu, fv)) * period


def _texture_region(x, y, rng):
    """Signed distance of the random rectangle a texture fills."""
    centre = rng.uniform(0.35, 0.65, 2)
    half = rng.uniform(0.22, 0.5, 2)
    return np.minimum(half[0] - np.abs(x - centre[0]), half[1] - np.abs(y - centre[1]))


# name -> (drawer, rotation range in radians or None for any angle, is_texture)
_TILT = 0.3  # stripes keep their orientation within +-17 degrees, so the classes stay distinct
_CLASSES: dict[str, tuple[Drawer, tuple[float, float] | None, bool]] = {
    "circle": (_circle, None, False),
    "square": (_square, None, False),
    "triangle": (_triangle, None, False),
    "cross": (_cross, None, False),
    "ring": (_ring, None, False),
    "horizontal_stripes": (lambda u, v, r, g: _stripes(v, u, r, g), (-_TILT, _TILT), True),
    "vertical_stripes": (_stripes, (-_TILT, _TILT), True),
    "checkerboard": (_checkerboard, None, True),
    "diagonal_stripes": (_stripes, (math.pi / 4 - _TILT, math.pi / 4 + _TILT), True),
    "dots": (_dots, None, True),
    "star": (_star, None, False),
    "crescent": (_crescent, None, False),
}


def _class_colour(label: int) -> np.ndarray:
    """A saturated RGB colour per class, hues evenly spaced round the colour wheel."""
    hue = label / len(SYNTHETIC_CLASSES)
    channel = np.clip(np.abs(np.mod(hue * 6 + np.array([0.0, 4.0, 2.0]), 6) - 3) - 1, 0, 1)
    return 40 + 200 * channel


def _colours(label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground RGB (0-255 floats) at least 90 apart, so shapes stay visible.

    The foreground leans by a random amount towards its class's colour, as real classes have
    typical colours (sky behind planes): enough for pixel statistics to beat chance, far
    from enough to classify by colour alone.
    """
    weight = rng.uniform(0.3, 1.0)
    foreground = weight * _class_colour(label) + (1 - weight) * rng.uniform(0, 255, 3)
    background = rng.uniform(0, 255, 3)
    for _ in range(20):
        if np.linalg.norm(foreground - background) >= 90:
            break
        background = rng.uniform(0, 255, 3)
    return background, foreground


def _draw(label: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image of class `label` as an HxWx3 float array (0-255, not yet clipped), and the
    object's H x W coverage in [0, 1] (where the shape or texture is drawn)."""
    drawer, angles, is_texture = _CLASSES[SYNTHETIC_CLASSES[label]]
    background, foreground = _colours(label, rng)
    grid = (np.arange(size, dtype=np.float64) + 0.5) / size
    x, y = np.meshgrid(grid, grid)
    centre = rng.uniform(0.3, 0.7, 2)
    radius = float(rng.uniform(0.17, 0.32))
    angle = rng.uniform(*angles) if angles is not None else rng.uniform(0, 2 * np.pi)
    if is_texture and rng.random() < 0.5:
        angle = -angle  # mirror, so diagonal stripes run both ways
    dx, dy = x - centre[0], y - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    distance = drawer(u, v, radius, rng)
    if is_texture:
        distance = np.minimum(distance, _texture_region(x, y, rng))
    coverage = np.clip(distance * size + 0.5, 0.0, 1.0)[:, :, None]  # one-pixel antialiased edge
    tilt = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0, 80) * ((x - 0.5) * np.cos(tilt) + (y - 0.5) * np.sin(tilt))
    field = background + gradient[:, :, None]
    image = field * (1.0 - coverage) + foreground * coverage
    return image + rng.normal(0.0, rng.uniform(2.0, 20.0), image.shape), coverage[:, :, 0]


def synthetic_sample(spec: SyntheticSpec, index: int) -> tuple[np.ndarray, int]:
    """Image `index` of the dataset `spec` describes, and its label (index % num_classes).

    Returns:
        (HxWx3 uint8 image, label); the same (spec.seed, index, size) always gives the same image.
    """
    if index < 0:
        raise UserInputError(f"expected a non-negative image index; received {index}.")
    label = index % spec.num_classes
    rng = np.random.default_rng([spec.seed, index])
    image, _ = _draw(label, spec.size, rng)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


def synthetic_object_box(spec: SyntheticSpec, index: int) -> tuple[int, int, int, int]:
    """Where image `index`'s object lies: (top, left, bottom, right) pixel rows and columns,
    bottom and right exclusive, of the pixels its shape or texture covers by half or more. The
    recorded position for localisation checks (the image itself is drawn the same way)."""
    if index < 0:
        raise UserInputError(f"expected a non-negative image index; received {index}.")
    _, coverage = _draw(index % spec.num_classes, spec.size, np.random.default_rng([spec.seed, index]))
    rows, cols = np.nonzero(coverage >= 0.5)
    if len(rows) == 0:  # a texture whose stripes all fell between pixels: the whole image
        return 0, 0, spec.size, spec.size
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def make_synthetic(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """All images of `spec` in memory.

    Returns:
        images: uint8 array (N, size, size, 3); labels: int64 array (N,), N = num_classes * per_class.
    """
    images = np.empty((spec.num_images, spec.size, spec.size, 3), dtype=np.uint8)
    labels = np.empty(spec.num_images, dtype=np.int64)
    for index in range(spec.num_images):
        images[index], labels[index] = synthetic_sample(spec, index)
    return images, labels


def write_synthetic_folder(spec: SyntheticSpec, root: str | os.PathLike[str]) -> Path:
    """Write the dataset as ``root/<class>/<index>.png``, readable by read_class_folder.

    For a train/val layout call it twice, e.g. with seeds 0 and 1, on ``root/train`` and
    ``root/val``.

    Returns:
        `root` as a Path.
    """
    folder = Path(root)
    names = synthetic_class_names(spec.num_classes)
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index in range(spec.num_images):
        image, label = synthetic_sample(spec, index)
        Image.fromarray(image).save(folder / names[label] / f"{index:06d}.png")
    return folder
