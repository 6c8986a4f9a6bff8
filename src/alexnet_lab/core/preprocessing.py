"""Input preprocessing bound to weights: PreprocessSpec and its numpy implementation.

A spec says everything the weights were trained with (resize, crop, channel order, scale, mean,
std) so prediction and evaluation never guess. The numpy path works on HxWx3 uint8 RGB arrays
and returns float32 HxWx3 in the spec's channel order (channels last); adapters transpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alexnet_lab.core.errors import AlexnetLabError, UserInputError
from alexnet_lab.core.metadata import MAX_SIDE, MetadataError, sane_preprocess_fields, shown
from alexnet_lab.core.resize import resize_bilinear  # callers resize through this module

# Image guard (image_size_problem): decoded pixels (a 10000x10000 photo, 300 MB as uint8), the
# aspect ratio (wide panoramas are about 10:1; a 1xN strip is refused before it is resized to
# 256 x 256N) and the resized image (MAX_SIDE^2 at the largest aspect: 400 MB as float32).
DEFAULT_MAX_PIXELS = 100_000_000
MAX_ASPECT_RATIO = 32
MAX_RESIZED_PIXELS = MAX_SIDE * MAX_SIDE * MAX_ASPECT_RATIO


class ImageReadError(AlexnetLabError, ValueError):
    """An image that is missing, is not an image, cannot be fully decoded, or is too large (or too
    elongated) to decode and resize (image_size_problem). data.images re-exports it."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes a network input.

    Attributes:
        resize: target size: of the shorter side ('shorter') or of both sides ('square').
        resize_mode: 'shorter' keeps the aspect ratio (torchvision), 'square' does not (Caffe),
            'none' skips resizing (data already at crop size).
        crop: side of the square center crop; offsets are floor((size - crop) / 2).
        interpolation: only 'bilinear' is supported.
        antialias: low-pass when shrinking, as PIL and torchvision's antialias=True do.
        channel_order: 'RGB' or 'BGR' (Caffe weights were trained on BGR).
        scale: multiplies the 0-255 pixel values: 1/255 for [0, 1] inputs, 1.0 for 0-255.
        mean: subtracted per channel after scaling, in channel_order.
        std: divides per channel after the mean; None means no division.
    """

    resize: int = 256
    resize_mode: str = "shorter"
    crop: int = 224
    interpolation: str = "bilinear"
    antialias: bool = True
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] | None = (0.229, 0.224, 0.225)
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        """Every spec, from any file or caller, passes the one metadata validator (core.metadata)."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "name"}
        for name, value in sane_preprocess_fields(**fields).items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessSpec:
        if not isinstance(data, Mapping):
            raise MetadataError(f"preprocessing metadata must be a JSON object; received {shown(data)}.")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """One line a person can check against a paper or a model card."""
        if self.resize_mode == "shorter":
            resize = f"resize shorter side to {self.resize} ({self.interpolation}{', antialias' if self.antialias else ''})"
        elif self.resize_mode == "square":
            resize = f"resize to {self.resize}x{self.resize} ({self.interpolation}{', antialias' if self.antialias else ''})"
        else:
            resize = "no resize"
        scale = "scale to [0, 1]" if abs(self.scale - 1 / 255) < 1e-12 else f"scale x{self.scale:g}"
        std = f", std {tuple(round(s, 5) for s in self.std)}" if self.std is not None else ", no std"
        return (
            f"{self.name}: {resize}; center-crop {self.crop}; {self.channel_order}; {scale}; "
            f"mean {tuple(round(m, 5) for m in self.mean)}{std}"
        )

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Preprocess one HxWx3 uint8 RGB image into a float32 crop x crop x 3 array, or an
        N x H x W x 3 batch (or a list of images of any sizes) into N x crop x crop x 3."""
        if isinstance(image, (list, tuple)) or np.ndim(image) == 4:
            return preprocess_batch(list(image), self)
        return preprocess(image, self)

    def normalize(self, pixels: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """Channel order, scale, mean and std, without resize or crop (keras.applications'
        preprocess_input): 0-255 RGB pixels of any leading shape -> float32 network input."""
        return normalize(pixels, self, channel_axis)


TORCHVISION_IMAGENET = PreprocessSpec(name="torchvision-imagenet")

BVLC_CAFFE = PreprocessSpec(
    resize=256,
    resize_mode="square",
    crop=227,
    channel_order="BGR",
    scale=1.0,
    mean=(104.00699, 116.66877, 122.67891),  # B, G, R means of the ILSVRC-2012 training set
    std=None,
    name="bvlc-caffe",
)

# CIFAR-10 training-set channel statistics (RGB, on the [0, 1] scale): the CIFAR variants' preprocessing
CIFAR_32 = PreprocessSpec(resize=32, resize_mode="square", crop=32, mean=(0.4914, 0.4822, 0.4465),
                          std=(0.2470, 0.2435, 0.2616), name="cifar-32")


def centred_offsets(height: int, width: int, box_height: int, box_width: int) -> tuple[int, int]:
    """(top, left) of a box_height x box_width box centred in a height x width image:
    floor((side - box) / 2) on each axis (256 -> 224: 16; 256 -> 227: 14). Every centred box asks
    this function: centre crops (crop_offsets) and the random-resized-crop fallback
    (data.augment.fallback_crop_box, which the tf.data pipeline shares).

    Raises:
        UserInputError: a box side below 1 or larger than the image's.
    """
    if not (0 < box_height <= height and 0 < box_width <= width):
        raise UserInputError(f"cannot centre a {box_width}x{box_height} box in a {width}x{height} image: each box "
                             "side must be at least 1 and at most the image's; resize the image or shrink the box.")
    return (height - box_height) // 2, (width - box_width) // 2


def crop_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """(top, left) of a centred crop x crop square (centred_offsets); every centre crop (eval views,
    stored views, train's centre views) asks this function."""
    return centred_offsets(height, width, crop, crop)


def resized_size(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int]:
    """(height, width) of the image resized as the spec resizes it: the one home of the resize
    rounding. 'shorter' truncates the longer side like torchvision (int(resize * long / short))."""
    if spec.resize_mode == "none":
        return height, width
    if spec.resize_mode == "square":
        return spec.resize, spec.resize
    if height <= width:
        return spec.resize, int(spec.resize * width / height)
    return int(spec.resize * height / width), spec.resize


def resize_geometry(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """(resized height, resized width, crop top, crop left): resized_size, then the crop's offsets
    floor((size - crop) / 2) (256 -> 224: 16; 256 -> 227: 14). preprocess, the evaluation store
    (data.datasets.stored_view) and explain's view all ask this function.

    Raises:
        UserInputError: the resized image is smaller than the crop (image_size_problem says so
            first, in the image's words, on every guarded path).
    """
    resized = resized_size(height, width, spec)
    return resized[0], resized[1], *crop_offsets(resized[0], resized[1], spec.crop)


def image_size_problem(height: int, width: int, spec: PreprocessSpec | None = None,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """The one image guard: why a `width` x `height` image may not be decoded and resized, or None.

    Checked from a file's header before any pixel is decoded (data.images) and again before any
    resize (resized_crop, data.datasets.stored_view): the decoded pixels against `max_pixels`, the
    aspect ratio against MAX_ASPECT_RATIO and, with a spec, the resized image against
    MAX_RESIZED_PIXELS (and an unresized image against the crop).
    """
    if height < 1 or width < 1:
        return f"a {width}x{height} image has no pixels"
    pixels = height * width
    if pixels > max_pixels:
        return (f"{width}x{height} = {pixels:,} pixels is over the {max_pixels:,}-pixel budget "
                f"(about {3 * pixels / 1e9:.1f} GB decoded)")
    aspect = max(height, width) / min(height, width)
    if aspect > MAX_ASPECT_RATIO:
        return (f"a {width}x{height} image has an aspect ratio of {aspect:.0f}:1, beyond the {MAX_ASPECT_RATIO}:1 "
                "bound (its shorter-side resize would be too large)")
    if spec is None:
        return None
    resized_h, resized_w = resized_size(height, width, spec)
    if min(resized_h, resized_w) < spec.crop:
        return f"a {width}x{height} image is smaller than the {spec.crop}x{spec.crop} crop and '{spec.name}' does not resize"
    if resized_h * resized_w > MAX_RESIZED_PIXELS:
        return (f"a {width}x{height} image would be resized to {resized_w}x{resized_h}, over the "
                f"{MAX_RESIZED_PIXELS:,}-pixel budget of a resized image")
    return None


def check_image_size(height: int, width: int, spec: PreprocessSpec | None = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise ImageReadError when image_size_problem finds one."""
    problem = image_size_problem(height, width, spec, max_pixels)
    if problem is not None:
        raise ImageReadError(f"cannot use the image: {problem}; crop, pad or downscale it to a usual photo shape.")


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Square center crop with offsets floor((dim - size) / 2) (256 -> 224: 16; 256 -> 227: 14)."""
    height, width = image.shape[:2]
    if height < size or width < size:
        raise UserInputError(f"cannot center-crop {size}x{size} from a {height}x{width} image; resize it first.")
    top, left = crop_offsets(height, width, size)
    return image[top : top + size, left : left + size]


def check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserInputError(f"expected an HxWx3 RGB image array; received shape {image.shape}.")


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round resized float pixels back to uint8, as PIL's resize (torchvision's usual path) does."""
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def resized_crop(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The crop x crop pixels the network sees, before normalisation: guarded (image_size_problem),
    resized and cropped by resize_geometry. A uint8 image stays uint8 (rounded after the resize,
    like the evaluation store), so predict, evaluate and explain feed identical pixels."""
    check_image(image)
    height, width = image.shape[:2]
    check_image_size(height, width, spec, max(DEFAULT_MAX_PIXELS, height * width))  # decoded already
    resized_h, resized_w, top, left = resize_geometry(height, width, spec)
    if (resized_h, resized_w) != (height, width):
        resized = resize_bilinear(image, resized_h, resized_w, spec.antialias)
        image = to_uint8(resized) if image.dtype == np.uint8 else resized
    return np.ascontiguousarray(image[top : top + spec.crop, left : left + spec.crop])


def normalisation_terms(spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset), float32 per channel in the spec's channel order: x = pixel * scale + offset
    folds scale, mean and std into one multiply-add, the one formula every path uses."""
    std = np.asarray(spec.std if spec.std is not None else (1.0, 1.0, 1.0), np.float32)
    mean = np.asarray(spec.mean, np.float32)
    return (np.float32(spec.scale) / std).astype(np.float32), (-mean / std).astype(np.float32)


def normalised(pixels: np.ndarray, scale: np.ndarray, offset: np.ndarray, bgr: bool) -> np.ndarray:
    """0-255 channels-last pixels -> float32 network input: reversed to BGR when `bgr`, then
    pixel * scale + offset (normalisation_terms); the numpy form of the one multiply-add."""
    pixels = np.asarray(pixels)
    if bgr:
        pixels = pixels[..., ::-1]
    return (pixels.astype(np.float32) * scale + offset).astype(np.float32, copy=False)


def normalize(pixels: np.ndarray, spec: PreprocessSpec, channel_axis: int = -1) -> np.ndarray:
    """Reorder channels, scale and normalise 0-255 RGB pixels (3 channels on channel_axis)."""
    out = np.moveaxis(np.asarray(pixels), channel_axis, -1)
    if out.shape[-1] != 3:
        raise UserInputError(f"expected 3 RGB channels on axis {channel_axis}; received shape {np.shape(pixels)}.")
    out = normalised(out, *normalisation_terms(spec), bgr=spec.channel_order == "BGR")
    return np.ascontiguousarray(np.moveaxis(out, -1, channel_axis), dtype=np.float32)


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize, center-crop, reorder channels, scale and normalise one RGB image (resized_crop,
    then normalize)."""
    return normalize(resized_crop(image, spec), spec)


def preprocess_batch(images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Stack preprocessed images into an N x crop x crop x 3 float32 batch (channels last)."""
    return np.stack([preprocess(image, spec) for image in images])
