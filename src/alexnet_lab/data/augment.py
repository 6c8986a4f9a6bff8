"""Training-time augmentation: a framework-neutral spec and its numpy reference implementation.

:class:`AugmentSpec` is what a run config records; each framework adapter maps it onto its own
transforms, and :func:`augment` is the reference they are tested against (and what simple
numpy loaders use). Steps run in a fixed order: random-resized-crop, padded random crop,
horizontal flip, colour jitter (brightness, contrast, saturation, in that order; torchvision
shuffles the jitter order, a fixed order keeps the two frameworks reproducible), cutout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import centred_offsets, resize_bilinear

Range = tuple[float, float]

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale uses for contrast and saturation.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before its fallback


def _as_range(value: Sequence[float], what: str) -> Range:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserInputError(f"expected {what} as a (low, high) pair; received {value!r}.") from None
    return low, high


@dataclass(frozen=True)
class AugmentSpec:
    """Random training transforms, described without any framework.

    Attributes:
        random_crop_padding: pad each side with this many zero pixels, then crop a random
            window of the original size (CIFAR recipe: 4); 0 turns it off.
        random_resized_crop: ((min_scale, max_scale), (min_ratio, max_ratio)): crop a random
            box of that area fraction and aspect ratio and resize it back to the image size
            (ImageNet recipe: ((0.08, 1.0), (3/4, 4/3))); None turns it off.
        hflip: flip left-right with probability 0.5.
        color_jitter: brightness, contrast and saturation factors are each drawn from
            [1 - color_jitter, 1 + color_jitter]; 0 turns it off.
        cutout: paint a cutout x cutout square, centred on a uniformly drawn pixel and clipped at
            the borders (so near an edge less is hidden), in the image's own mean colour, which
            after normalisation is close to no signal (cifar10-best: 8); 0 turns it off.
    """

    random_crop_padding: int = 0
    random_resized_crop: tuple[Range, Range] | None = None
    hflip: bool = False
    color_jitter: float = 0.0
    cutout: int = 0

    def __post_init__(self) -> None:
        if int(self.random_crop_padding) != self.random_crop_padding or self.random_crop_padding < 0:
            raise UserInputError(
                f"expected random_crop_padding as a whole number >= 0; received {self.random_crop_padding!r}."
            )
        object.__setattr__(self, "random_crop_padding", int(self.random_crop_padding))
        if self.random_resized_crop is not None:
            object.__setattr__(self, "random_resized_crop", _check_resized_crop(self.random_resized_crop))
        if not 0.0 <= float(self.color_jitter) < 1.0:
            raise UserInputError(f"expected color_jitter in [0, 1); received {self.color_jitter!r}.")
        object.__setattr__(self, "color_jitter", float(self.color_jitter))
        object.__setattr__(self, "hflip", bool(self.hflip))
        if int(self.cutout) != self.cutout or self.cutout < 0:
            raise UserInputError(f"expected cutout as a whole number of pixels >= 0; received {self.cutout!r}.")
        object.__setattr__(self, "cutout", int(self.cutout))

    @property
    def is_identity(self) -> bool:
        """True when the spec changes nothing (evaluation, or augmentation switched off)."""
        return not (self.random_crop_padding or self.random_resized_crop or self.hflip or self.color_jitter
                    or self.cutout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentSpec:
        """Inverse of to_dict (JSON turns tuples into lists; unknown keys are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _check_resized_crop(value: Any) -> tuple[Range, Range]:
    try:
        scale_value, ratio_value = value
    except (TypeError, ValueError):
        raise UserInputError(
            f"expected random_resized_crop as ((min_scale, max_scale), (min_ratio, max_ratio)); received {value!r}."
        ) from None
    scale = _as_range(scale_value, "the random_resized_crop scale range")
    ratio = _as_range(ratio_value, "the random_resized_crop ratio range")
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise UserInputError(f"expected a scale range with 0 < low <= high <= 1; received {scale}.")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise UserInputError(f"expected an aspect-ratio range with 0 < low <= high; received {ratio}.")
    return scale, ratio


NO_AUGMENT = AugmentSpec()
CIFAR_AUGMENT = AugmentSpec(random_crop_padding=4, hflip=True)
CIFAR_CUTOUT_AUGMENT = AugmentSpec(random_crop_padding=4, hflip=True, cutout=8)
IMAGENET_AUGMENT = AugmentSpec(random_resized_crop=((0.08, 1.0), (3 / 4, 4 / 3)), hflip=True)


def resized_crop_box(
    height: int, width: int, crop: tuple[Range, Range], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, box_height, box_width) drawn as torchvision's RandomResizedCrop.get_params."""
    (scale_low, scale_high), (ratio_low, ratio_high) = crop
    area = height * width
    log_low, log_high = math.log(ratio_low), math.log(ratio_high)
    for _ in range(CROP_ATTEMPTS):
        target = area * rng.uniform(scale_low, scale_high)
        aspect = math.exp(rng.uniform(log_low, log_high))
        box_w = int(round(math.sqrt(target * aspect)))
        box_h = int(round(math.sqrt(target / aspect)))
        if 0 < box_w <= width and 0 < box_h <= height:
            top = int(rng.integers(0, height - box_h + 1))
            left = int(rng.integers(0, width - box_w + 1))
            return top, left, box_h, box_w
    return fallback_crop_box(height, width, (ratio_low, ratio_high))


def fallback_crop_box(height: int, width: int, ratio: Range) -> tuple[int, int, int, int]:
    """(top, left, box_height, box_width) of RandomResizedCrop's fallback when no draw fits: the
    largest box whose aspect ratio (width / height) is inside `ratio`, centred (centred_offsets).
    The tf.data pipeline (train.keras.augment_tf) asks this function too.

    Raises:
        UserInputError: the ratio range rounds a box side to 0 (an image side of a pixel or two
            with a ratio range far from 1).
    """
    ratio_low, ratio_high = ratio
    aspect = width / height
    if aspect < ratio_low:
        box_w, box_h = width, int(round(width / ratio_low))
    elif aspect > ratio_high:
        box_h, box_w = height, int(round(height * ratio_high))
    else:
        box_w, box_h = width, height
    return *centred_offsets(height, width, box_h, box_w), box_h, box_w


def _random_resized_crop(
    image: np.ndarray, crop: tuple[Range, Range], size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    top, left, box_h, box_w = resized_crop_box(image.shape[0], image.shape[1], crop, rng)
    box = image[top : top + box_h, left : left + box_w].astype(np.float32)
    return resize_bilinear(box, size[0], size[1], antialias=True)


def _padded_crop(image: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))  # zero padding
    top, left = (int(v) for v in rng.integers(0, 2 * padding + 1, size=2))
    return padded[top : top + height, left : left + width]


def _jitter(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation on a float 0-255 image, clipped after each like torchvision."""
    brightness, contrast, saturation = rng.uniform(1 - amount, 1 + amount, size=3)
    out = np.clip(image * brightness, 0, 255)
    mean_grey = float((out @ LUMA).mean())
    out = np.clip((out - mean_grey) * contrast + mean_grey, 0, 255)
    grey = (out @ LUMA)[:, :, None]
    return np.clip((out - grey) * saturation + grey, 0, 255)


def cutout_box(height: int, width: int, size: int, centre: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a size x size square centred on `centre`, clipped to the image."""
    top, left = centre[0] - size // 2, centre[1] - size // 2
    return max(top, 0), min(top + size, height), max(left, 0), min(left + size, width)


def _cutout(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Paints in place: `image` is augment's own float32 working copy."""
    height, width = image.shape[:2]
    centre = (int(rng.integers(0, height)), int(rng.integers(0, width)))
    top, bottom, left, right = cutout_box(height, width, size, centre)
    image[top:bottom, left:right] = image.mean(axis=(0, 1))
    return image


def augment(
    image: np.ndarray,
    spec: AugmentSpec,
    rng: np.random.Generator,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Apply `spec` to one HxWx3 uint8 image; the same rng state gives the same result.

    Args:
        image: HxWx3 uint8 RGB.
        spec: which transforms to apply.
        rng: a numpy Generator; pass one per worker, seeded per epoch, for reproducible runs.
        size: (height, width) the random-resized-crop output is resized to; defaults to the
            input size. Without random-resized-crop the output keeps the input size.

    Returns:
        A new HxWx3 uint8 array.

    Raises:
        UserInputError: for a non-uint8 or non-HxWx3 image, or an rng that is not a Generator.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise UserInputError(f"expected an HxWx3 uint8 image; received a {got}. Read images with read_image_rgb.")
    if not isinstance(rng, np.random.Generator):
        raise UserInputError(
            f"expected rng to be a numpy Generator; received {type(rng).__name__}. Use np.random.default_rng(seed)."
        )
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise UserInputError(f"expected size as (height, width) of positive ints; received {size!r}.")
    out: np.ndarray = image.astype(np.float32)
    if spec.random_resized_crop is not None:
        out = _random_resized_crop(out, spec.random_resized_crop, size or image.shape[:2], rng)
    if spec.random_crop_padding:
        out = _padded_crop(out, spec.random_crop_padding, rng)
    if spec.hflip and rng.random() < 0.5:
        out = out[:, ::-1]
    if spec.color_jitter:
        out = _jitter(out, spec.color_jitter, rng)
    if spec.cutout:
        out = _cutout(out, spec.cutout, rng)
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def augment_batch(images: np.ndarray, spec: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    """Apply :func:`augment` to each image of an N x H x W x 3 uint8 batch, in order."""
    return np.stack([augment(image, spec, rng) for image in images])
