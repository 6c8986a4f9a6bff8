"""The keras.applications module contract: `AlexNet`, `AlexNetOriginal`, `AlexNetCifar`,
`preprocess_input` and `decode_predictions`, as `keras.applications.vgg16` has them.

preprocess_input reads the preprocessing bound to the weights in the registry (one definition:
core.preprocessing), so torchvision weights get [0, 1] RGB with ImageNet mean/std and the Caffe
ones 0-255 BGR minus the mean; like keras.applications it neither resizes nor crops.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.frameworks.keras.model import AlexNet


def AlexNetOriginal(**kwargs) -> keras.Model:  # noqa: N802 - keras.applications naming
    """The 2012 / Caffe AlexNet (227x227, grouped convs, LRN); the arguments of AlexNet."""
    return AlexNet(**{"name": "alexnet_original", **kwargs, "variant": "original"})


def AlexNetCifar(**kwargs) -> keras.Model:  # noqa: N802 - keras.applications naming
    """The 32x32 CIFAR adaptation (BatchNorm, no public weights); the arguments of AlexNet."""
    return AlexNet(**{"name": "alexnet_cifar", **kwargs, "variant": "cifar"})  # classes: the variant's own


def _spec(weights: str | PreprocessSpec) -> PreprocessSpec:
    if isinstance(weights, PreprocessSpec):
        return weights
    from alexnet_lab.weights.registry import get_entry

    return get_entry(weights).preprocess


def preprocess_input(x, data_format: str | None = None, weights: str | PreprocessSpec = "imagenet"):
    """0-255 RGB images (a batch or one, already at the model's input size) -> model input.

    Args:
        x: numpy array or tensor, channels on the last axis (first with 'channels_first').
        data_format: 'channels_last' / 'channels_first'; default Keras' image_data_format().
        weights: a registry name ('imagenet' = 'torchvision', 'bvlc') or a PreprocessSpec.

    Returns:
        float32 numpy for numpy input, a backend tensor for a tensor (usable in tf.data / a graph).
    """
    spec = _spec(weights)
    fmt = data_format or keras.config.image_data_format()
    if fmt not in ("channels_last", "channels_first"):
        raise UserInputError(f"data_format must be 'channels_last' or 'channels_first'; received data_format={fmt!r}.")
    axis = -1 if fmt == "channels_last" else (0 if len(np.shape(x)) == 3 else 1)
    if isinstance(x, (np.ndarray, list, tuple)):
        return spec.normalize(np.asarray(x), axis)
    x = ops.moveaxis(ops.cast(x, "float32"), axis, -1)
    if spec.channel_order == "BGR":
        x = ops.flip(x, axis=-1)
    x = x * spec.scale - ops.convert_to_tensor(np.asarray(spec.mean, np.float32))
    if spec.std is not None:
        x = x / ops.convert_to_tensor(np.asarray(spec.std, np.float32))
    return ops.moveaxis(x, -1, axis)


def decode_predictions(preds, top: int = 5, weights: str = "imagenet") -> list[list[tuple[str, str, float]]]:
    """keras.applications' decode_predictions: per row the `top` (WordNet ID, name, score)
    tuples, best first, e.g. ('n02123045', 'tabby', 0.71); the IDs are the registry weights' own.

    Raises:
        UserInputError: preds is not (samples, classes) with the weights' class count.
    """
    from alexnet_lab.weights.registry import get_entry

    entry = get_entry(weights)
    names, ids = entry.category_names, entry.class_ids()
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != len(names):
        raise UserInputError(f"decode_predictions expects a batch of predictions of shape (samples, {len(names)}); "
                             f"received an array of shape {preds.shape}.")
    order = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [[(ids[int(i)], names[int(i)], float(row[i])) for i in idx] for row, idx in zip(preds, order)]
