"""Training views cut from the whole photo: the ImageNet random-resized crop as torchvision's
RandomResizedCrop draws it (scale and ratio over the whole image, ten tries, then its central
fallback), decoded and resized in C instead of the numpy reference.

The crop box is drawn from the image's header size before any pixel is decoded, so a JPEG is
decoded at the smallest DCT scale (PIL's draft) that still leaves the box at least twice `crop`
pixels on its shorter side (so the box's rounding to whole reduced pixels stays small); the box
is then resized to crop x crop by a uint8 resize passed in by the framework's loader (PIL's here;
the PyTorch loader passes torch's SIMD one) and flipped by that resize, in C. Normalisation
happens later, on the batch. These views need not equal the numpy reference bit for bit
(predict and evaluate keep that one): tests/unit/test_train_views.py bounds the difference.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from alexnet_lab.data.augment import AugmentSpec, augment, resized_crop_box
from alexnet_lab.data.images import ImageReadError

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # top, left, height, width
# (uint8 HxWx3 pixels, box, side, flip) -> uint8 side x side x 3: the box resized with antialias,
# mirrored left-right when flip is true
Resize = Callable[[np.ndarray, Box, int, bool], np.ndarray]


def pil_resized_crop(pixels: np.ndarray, box: Box, size: int, flip: bool = False) -> np.ndarray:
    """The box resized to size x size with PIL's antialiased bilinear filter (C, uint8)."""
    top, left, height, width = box
    image = Image.fromarray(pixels).resize((size, size), Image.BILINEAR, box=(left, top, left + width, top + height))
    return np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image)


def black_unless_strict(exc: ImageReadError, name: str, size: int, strict: bool, warned: set[str],
                        what: str = "image") -> np.ndarray:
    """The training stores' one policy for an unreadable image: raise when strict, else a black
    size x size view, with one warning per image name (`warned` remembers who was warned)."""
    if strict:
        raise exc
    if name not in warned:
        warned.add(name)
        log.warning("unreadable %s read as black: %s", what, exc)
    return np.zeros((size, size, 3), np.uint8)


def row_positions(key, length: int) -> int | Sequence[int]:
    """What a training store's `store[key]` reads, as numpy indexes: one row for an integer key
    (negative counts from the end), else the rows of a slice or an index array."""
    if isinstance(key, (int, np.integer)):
        return int(key) + (length if key < 0 else 0)
    return range(length)[key] if isinstance(key, slice) else [int(i) for i in np.asarray(key).ravel()]


def uses_whole_image(spec: AugmentSpec | None) -> bool:
    """True when a training view is cut from the whole decoded photo (a random-resized crop)."""
    return spec is not None and spec.random_resized_crop is not None


def box_min_side(height: int, width: int, box: Box, crop: int) -> int:
    """The shorter side a height x width photo may be decoded at while `box` keeps at least twice
    `crop` pixels on its shorter side (so the box's rounding to whole reduced pixels stays small)."""
    return -(-min(height, width) * 2 * crop // max(1, min(box[2], box[3])))


def scaled_box(box: Box, factor_y: float, factor_x: float, shape: tuple[int, ...]) -> Box:
    """`box` drawn on the header size, on pixels decoded `factor` times smaller (draft)."""
    top, left = min(int(box[0] * factor_y), shape[0] - 1), min(int(box[1] * factor_x), shape[1] - 1)
    height = max(1, min(int(round(box[2] * factor_y)), shape[0] - top))
    width = max(1, min(int(round(box[3] * factor_x)), shape[1] - left))
    return top, left, height, width


def decoded_with_box(path: str, spec: AugmentSpec, crop: int, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """(pixels, box): the photo decoded as small as its random-resized-crop box allows."""
    from alexnet_lab.data.datasets import load_pixels

    drawn: dict = {}

    def plan(height: int, width: int) -> int:
        drawn["size"] = (height, width)
        drawn["box"] = box = resized_crop_box(height, width, spec.random_resized_crop, rng)
        return box_min_side(height, width, box, crop)

    pixels = load_pixels(path, plan)
    if "box" not in drawn:  # synthetic or CIFAR-10 pixels: no header was read
        return pixels, resized_crop_box(pixels.shape[0], pixels.shape[1], spec.random_resized_crop, rng)
    height, width = drawn["size"]
    if pixels.shape[:2] == (height, width):
        return pixels, drawn["box"]
    return pixels, scaled_box(drawn["box"], pixels.shape[0] / height, pixels.shape[1] / width, pixels.shape)


def random_resized_view(path: str, spec: AugmentSpec, crop: int, rng: np.random.Generator,
                        resize: Resize = pil_resized_crop) -> np.ndarray:
    """A crop x crop uint8 training view of the file at `path`: `spec`'s random-resized crop over
    the whole photo, then its other steps in augment's order (a flip alone inside `resize`)."""
    pixels, box = decoded_with_box(path, spec, crop, rng)
    return _boxed_view(pixels, box, spec, crop, rng, resize)


def stored_resized_view(pixels: np.ndarray, photo: tuple[int, int], spec: AugmentSpec, crop: int,
                        rng: np.random.Generator, resize: Resize = pil_resized_crop) -> np.ndarray:
    """The same view cut from `pixels`, the whole photo stored at another size (the decoded cache):
    the box is drawn on the photo's own (height, width) with the same draws as random_resized_view,
    then scaled to the stored pixels, as a reduced-size decode's box is."""
    box = resized_crop_box(photo[0], photo[1], spec.random_resized_crop, rng)
    if pixels.shape[:2] != tuple(photo):
        box = scaled_box(box, pixels.shape[0] / photo[0], pixels.shape[1] / photo[1], pixels.shape)
    return _boxed_view(pixels, box, spec, crop, rng, resize)


def _boxed_view(pixels: np.ndarray, box: Box, spec: AugmentSpec, crop: int, rng: np.random.Generator,
                resize: Resize) -> np.ndarray:
    rest = dataclasses.replace(spec, random_resized_crop=None)
    if rest == AugmentSpec(hflip=True):
        return resize(pixels, box, crop, bool(rng.random() < 0.5))
    return augment(np.ascontiguousarray(resize(pixels, box, crop, False)), rest, rng)
