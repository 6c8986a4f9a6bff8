"""The one validator of weight metadata: is what a file (or a caller) says about the weights sane?

PreprocessSpec runs :func:`sane_preprocess_fields` on construction and ModelMeta runs
:func:`check_meta_fields`, so every load of every format (.safetensors, .pth, .weights.h5,
.keras, run folders, registry files) passes through here before a pixel is normalised; fc8's
rows against the class count are core.bundle.check_fits's, once the tensors are known. A refusal
is one MetadataError line naming the field and the value it received.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

from alexnet_lab.core.errors import UserInputError, WeightFormatError, unknown_name_error

RESIZE_MODES = ("shorter", "square", "none")
CHANNEL_ORDERS = ("RGB", "BGR")
# Sane sizes for a spec's resize and crop (and a model's input size): AlexNet variants use 32 to
# 256; 8 is the smallest input the small-image variant is tested at, and 1024 keeps a resized
# image within a few hundred MB even at the image guard's largest aspect ratio (core.preprocessing).
MIN_SIDE, MAX_SIDE = 8, 1024
FIX = "re-create the file with sane metadata."


class MetadataError(UserInputError, WeightFormatError):
    """Weight metadata (preprocessing, class names, sizes) that is not sane; names the field.
    A UserInputError for a spec built in code, a WeightFormatError for a file that holds it."""


def shown(value: object) -> str:
    """repr(value), cut to one short line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _side(name: str, value: object) -> int:
    """An int within [MIN_SIDE, MAX_SIDE] (bools and floats refused)."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or not MIN_SIDE <= number <= MAX_SIDE:
        raise MetadataError(f"preprocessing '{name}' must be a whole number of pixels in {MIN_SIDE}..{MAX_SIDE}; "
                            f"received {shown(value)}; {FIX}")
    return int(number)


def _triple(name: str, value: object, positive: bool) -> tuple[float, float, float]:
    """Three finite floats, one per channel (each > 0 when `positive`)."""
    try:
        values = () if isinstance(value, (str, bytes)) else tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        need = "3 finite numbers > 0" if positive else "3 finite numbers"
        raise MetadataError(f"preprocessing '{name}' must be {need}, one per channel; received {shown(value)}; {FIX}")
    return values  # type: ignore[return-value]


def _scale(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise MetadataError(f"preprocessing 'scale' must be a finite number > 0 (1/255 or 1); received {shown(value)}; "
                            f"{FIX}")
    return float(value)


def sane_preprocess_fields(*, resize: object, resize_mode: object, crop: object, interpolation: object,
                           antialias: object, channel_order: object, scale: object, mean: object,
                           std: object) -> dict:
    """PreprocessSpec's fields, checked and normalised (ints, floats, tuples).

    Raises:
        MetadataError: naming the first field that is not sane and its value.
    """
    for name, value, choices in (("resize mode", resize_mode, RESIZE_MODES),
                                 ("channel order", channel_order, CHANNEL_ORDERS),
                                 ("interpolation", interpolation, ("bilinear",))):
        if not isinstance(value, str) or value not in choices:
            raise MetadataError(str(unknown_name_error(name, str(value), choices)))
    fields = {"resize": _side("resize", resize), "crop": _side("crop", crop)}
    if resize_mode != "none" and fields["resize"] < fields["crop"]:
        raise MetadataError(f"preprocessing needs crop <= resize; received crop={crop}, resize={resize}; {FIX}")
    if not isinstance(antialias, bool):
        raise MetadataError(f"preprocessing 'antialias' must be true or false; received {shown(antialias)}; {FIX}")
    fields.update(scale=_scale(scale), mean=_triple("mean", mean, positive=False),
                  std=None if std is None else _triple("std", std, positive=True))
    return fields


def check_class_names(names: object) -> tuple[str, ...]:
    """Class names: a non-empty list of non-blank, unique strings."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
        raise MetadataError(f"metadata 'categories' must be a non-empty list of class names; received {shown(names)}; "
                            f"{FIX}")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise MetadataError(f"metadata 'categories' has an empty or non-text class name at index {i} "
                                f"({shown(name)}); {FIX}")
        if name in seen:
            raise MetadataError(f"metadata 'categories' names '{name}' twice (indices {seen[name]} and {i}); class "
                                f"names must be unique; {FIX}")
        seen[name] = i
    return tuple(names)


def check_input_size(size: object) -> int:
    """A model input size: 0 (the preprocessing's crop) or 1..MAX_SIDE."""
    if isinstance(size, bool) or not isinstance(size, int) or not (size == 0 or 1 <= size <= MAX_SIDE):
        raise MetadataError(f"metadata 'input_size' must be 0 (the crop) or 1..{MAX_SIDE}; received {shown(size)}; {FIX}")
    return size
