"""The input side of the Keras builder: image data format, channel count and minimum size.

Both `keras.config.image_data_format()` values are supported. The network itself always runs
channels-last (explicit data_format on every layer), so its weights, layer shapes and the fc6
flatten order are the same either way; a channels_first model only transposes at its input
(and at its output when that is a feature map). Any channel count is accepted without pretrained
weights, as keras.applications does; an input too small for the five conv blocks is refused at
build time, and for a variable-size model before the backend sees it (TensorFlow's max-pool dies
of SIGFPE on a map smaller than its window).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.spec import ArchSpec

DATA_FORMATS = ("channels_last", "channels_first")


def data_format() -> str:
    """Keras' global image data format ('channels_last' unless set otherwise)."""
    return keras.config.image_data_format()


def _hwc(shape: tuple, fmt: str) -> tuple:
    return tuple(shape) if fmt == "channels_last" else (shape[1], shape[2], shape[0])


def _looks_transposed(shape: tuple, fmt: str) -> bool:
    """(3, 224, 224) under channels_last, or (224, 224, 3) under channels_first."""
    first, last = shape[0], shape[2]
    small = (1, 3, 4)
    return (first in small and last not in small) if fmt == "channels_last" else (last in small and first not in small)


def check_hw(spec: ArchSpec, height: int | None, width: int | None, received: str) -> None:
    """Refuse a height or width below the variant's minimum (None passes: checked per call)."""
    for size in (height, width):
        if size is not None and size < spec.min_input_size:
            raise UserInputError(
                f"input {height}x{width} is too small for AlexNet '{spec.name}': expected at least "
                f"{spec.min_input_size}x{spec.min_input_size} (the feature map vanishes below that). "
                f"Received {received}. Resize the images."
            )


def resolve_input_shape(spec: ArchSpec, input_shape, input_tensor, pretrained: bool) -> tuple[tuple, str]:
    """(input shape in the model's data format, data format), after every check.

    Raises:
        UserInputError: not 3 dimensions, the channels in the wrong place, other than 3 channels
            with pretrained weights, or too small.
    """
    fmt = data_format()
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        size, channels = spec.input_size, spec.in_channels
        return ((size, size, channels) if fmt == "channels_last" else (channels, size, size)), fmt
    shape = tuple(input_shape)
    layout = "(height, width, channels)" if fmt == "channels_last" else "(channels, height, width)"
    if len(shape) != 3:
        raise UserInputError(f"input_shape must be {layout} ({fmt}); received input_shape={input_shape}.")
    height, width, channels = _hwc(shape, fmt)
    if channels is None or (_looks_transposed(shape, fmt) and channels not in (1, 3, 4)):
        other = DATA_FORMATS[1 - DATA_FORMATS.index(fmt)]
        raise UserInputError(
            f"input_shape must be {layout} with Keras' image_data_format '{fmt}'; received input_shape="
            f"{input_shape}, which looks {other}. Pass the shape in {fmt} order, or call "
            f"keras.config.set_image_data_format('{other}') before building."
        )
    if pretrained and channels != spec.in_channels:
        raise UserInputError(
            f"pretrained weights need {spec.in_channels} input channels; received input_shape={input_shape}. "
            "Pass weights=None to build a model for other channel counts."
        )
    check_hw(spec, height, width, f"input_shape={input_shape}")
    return shape, fmt


def to_channels_last(x, fmt: str):
    return x if fmt == "channels_last" else layers.Permute((2, 3, 1), name="to_channels_last")(x)


def to_model_format(x, fmt: str):
    """A channels-last feature map back in the model's data format."""
    return x if fmt == "channels_last" else layers.Permute((3, 1, 2), name="to_channels_first")(x)


def _check_batch(spec: ArchSpec, fmt: str, batch) -> None:
    shape = getattr(batch, "shape", None)
    if shape is None or len(shape) != 4:
        return  # a dataset, a dict or a generator: the backend checks what it can
    height, width = (shape[1], shape[2]) if fmt == "channels_last" else (shape[2], shape[3])
    if isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)):
        check_hw(spec, int(height), int(width), f"a batch of shape {tuple(shape)}")


def guard_min_size(model: keras.Model, spec: ArchSpec, fmt: str) -> keras.Model:
    """Check the height and width of every batch given to predict / predict_on_batch / a call
    before the backend runs it (variable-size models only; a fixed size was checked at build).

    The guard lives on this Python object: a model loaded from a `.keras` file or cloned does not
    carry it (it holds Keras' own classes only, see frameworks.keras.blocks).
    """
    for method in ("predict", "predict_on_batch", "call"):
        original = getattr(model, method)

        @functools.wraps(original)
        def guarded(x, *args, _original=original, **kwargs):
            _check_batch(spec, fmt, x)
            return _original(x, *args, **kwargs)

        object.__setattr__(model, method, guarded)
    return model
