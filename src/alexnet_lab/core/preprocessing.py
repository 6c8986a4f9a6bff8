"""Input preprocessing bound to weights: PreprocessSpec and its numpy implementation.

A spec says everything the weights were trained with (resize, crop, channel order, scale, mean,
std) so prediction and evaluation never guess. The numpy path works on HxWx3 uint8 RGB arrays
and returns float32 HxWx3 in the spec's channel order (channels last); adapters transpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from alexnet_lab.core.errors import UserInputError, unknown_name_error

RESIZE_MODES = ("shorter", "square", "none")
CHANNEL_ORDERS = ("RGB", "BGR")


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
        if self.resize_mode not in RESIZE_MODES:
            raise unknown_name_error("resize mode", self.resize_mode, RESIZE_MODES)
        if self.channel_order not in CHANNEL_ORDERS:
            raise unknown_name_error("channel order", self.channel_order, CHANNEL_ORDERS)
        if self.interpolation != "bilinear":
            raise unknown_name_error("interpolation", self.interpolation, ("bilinear",))
        if self.crop < 1 or (self.resize_mode != "none" and self.resize < self.crop):
            raise UserInputError(
                f"preprocessing needs 1 <= crop <= resize; received crop={self.crop}, resize={self.resize}."
            )
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        if self.std is not None:
            object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)

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


@lru_cache(maxsize=64)
def _aa_weights(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """(out_size, in_size) matrix of bilinear weights with half-pixel centres.

    When shrinking with antialias, the triangle filter is stretched by the scale factor so every
    input pixel contributes (the PIL / torchvision antialias=True scheme); otherwise it is the
    plain two-tap bilinear filter with edge clamping.
    """
    scale = in_size / out_size
    stretch = scale if (antialias and scale > 1.0) else 1.0
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    if not antialias:
        centers = np.clip(centers - 0.5, 0, in_size - 1) + 0.5
    positions = np.arange(in_size, dtype=np.float64) + 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(positions[None, :] - centers[:, None]) / stretch)
    # support bounds as in the reference scheme: taps outside [center - s, center + s] are cut
    support = stretch
    lo = np.maximum(np.trunc(centers - support + 0.5), 0)
    hi = np.minimum(np.trunc(centers + support + 0.5), in_size)
    idx = np.arange(in_size)[None, :]
    weights = np.where((idx >= lo[:, None]) & (idx < hi[:, None]), weights, 0.0)
    weights = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    weights.flags.writeable = False  # cached and shared between calls
    return weights


def resize_bilinear(image: np.ndarray, height: int, width: int, antialias: bool = True) -> np.ndarray:
    """Resize an HxWxC array to height x width (float32 out), separably: rows then columns.

    Each pass is one matrix product (BLAS sgemm) with the (out, in) filter matrix.
    """
    src = image.astype(np.float32, copy=False)
    h, w, c = src.shape
    if h != height:
        rows = _aa_weights(h, height, antialias)
        src = (rows @ src.reshape(h, w * c)).reshape(height, w, c)
        h = height
    if w != width:
        cols = _aa_weights(w, width, antialias)
        by_column = np.ascontiguousarray(src.transpose(1, 0, 2)).reshape(w, h * c)
        src = (cols @ by_column).reshape(width, h, c).transpose(1, 0, 2)
    return np.ascontiguousarray(src, dtype=np.float32)


def resized_size(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int]:
    """Output (height, width) of the resize step; the longer side is truncated like torchvision."""
    if spec.resize_mode == "none":
        return height, width
    if spec.resize_mode == "square":
        return spec.resize, spec.resize
    if height <= width:
        return spec.resize, int(spec.resize * width / height)
    return int(spec.resize * height / width), spec.resize


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Square center crop with offsets floor((dim - size) / 2) (256 -> 224: 16; 256 -> 227: 14)."""
    height, width = image.shape[:2]
    if height < size or width < size:
        raise UserInputError(f"cannot center-crop {size}x{size} from a {height}x{width} image; resize it first.")
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserInputError(f"expected an HxWx3 RGB image array; received shape {image.shape}.")


def normalize(pixels: np.ndarray, spec: PreprocessSpec, channel_axis: int = -1) -> np.ndarray:
    """Reorder channels, scale and normalise 0-255 RGB pixels (3 channels on channel_axis)."""
    out = np.moveaxis(np.asarray(pixels, dtype=np.float32), channel_axis, -1)
    if out.shape[-1] != 3:
        raise UserInputError(f"expected 3 RGB channels on axis {channel_axis}; received shape {np.shape(pixels)}.")
    if spec.channel_order == "BGR":
        out = out[..., ::-1]
    out = out * np.float32(spec.scale) - np.asarray(spec.mean, dtype=np.float32)
    if spec.std is not None:
        out = out / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(out, -1, channel_axis), dtype=np.float32)


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize, center-crop, reorder channels, scale and normalise one uint8 RGB image."""
    check_image(image)
    height, width = resized_size(image.shape[0], image.shape[1], spec)
    out = resize_bilinear(image, height, width, spec.antialias) if (height, width) != image.shape[:2] else image
    return normalize(center_crop(out, spec.crop), spec)


def preprocess_batch(images: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Stack preprocessed images into an N x crop x crop x 3 float32 batch (channels last)."""
    return np.stack([preprocess(image, spec) for image in images])
