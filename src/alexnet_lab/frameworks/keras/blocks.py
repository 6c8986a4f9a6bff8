"""LRN and adaptive average pooling built from Keras' own layers and keras.ops.

A `.keras` file names the class of every layer; Keras imports only its own modules to find them
(keras/src/saving/serialization_lib.py, `_retrieve_class_or_fn`), so a model holding a class of
ours loads only in a process that imported alexnet_lab first. Written as nested functional models
(`lrn1` is a keras.Model whose graph is keras.ops calls), the same arithmetic saves as built-in
classes and ops and loads with plain `keras.saving.load_model`. No weights are involved, so
weight files are unchanged.
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_lab.core.spec import LRNSpec
from alexnet_lab.frameworks.keras.layers import adaptive_average_pool, local_response_norm


def _nested(x, name: str, body):
    """Apply `body` (symbolic tensor -> tensor) to x as a functional model named `name`."""
    inner = layers.Input(shape=tuple(x.shape[1:]), dtype=x.dtype, name=f"{name}_input")
    return keras.Model(inner, body(inner), name=name)(x)


def lrn(x, spec: LRNSpec, name: str):
    """Cross-channel LRN (Caffe / torch convention) on a channels-last map, as layer `name`."""
    return _nested(x, name, lambda t: local_response_norm(t, spec.size, spec.alpha, spec.beta, spec.k))


def adaptive_avgpool(x, output_size: int, name: str = "avgpool"):
    """torch's AdaptiveAvgPool2d on a channels-last map of static size; an Identity layer when
    the map already has the output size (owt at 224x224)."""
    if tuple(x.shape[1:3]) == (output_size, output_size):
        return layers.Identity(name=name)(x)
    return _nested(x, name, lambda t: adaptive_average_pool(t, output_size))
