"""Canonical weights <-> Keras model weights.

Keras kernels are HWIO: conv (kH, kW, in/groups, out) = canonical.transpose(2, 3, 1, 0), dense
(in, out) = canonical.T, and fc6's rows follow the H,W,C order of Keras' channels-last Flatten
(see core.transforms). Layers are found by their stable names conv1 ... fc8.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from alexnet_lab.core.errors import LayoutError
from alexnet_lab.core.layout import check_layout
from alexnet_lab.core.spec import get_arch
from alexnet_lab.core.transforms import canonical_to_hwio, hwio_to_canonical


def _weight_layers(model: keras.Model) -> list[str]:
    names = {layer.name for layer in model.layers}
    return [n for n in get_arch(model.alexnet_variant).layer_names if n in names]


def to_canonical(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights as canonical float32 arrays (conv layers only without the top)."""
    spec = get_arch(model.alexnet_variant)
    layers = {}
    for name in _weight_layers(model):
        kernel, bias = model.get_layer(name).get_weights()
        layers[name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
    return hwio_to_canonical(layers, spec)


def from_canonical(model: keras.Model, tensors: Mapping[str, np.ndarray]) -> keras.Model:
    """Set the model's weights from canonical arrays; every layer the model has must be given."""
    spec = get_arch(model.alexnet_variant)
    present = _weight_layers(model)
    if "fc8" in present:
        check_layout(tensors, spec, model.get_layer("fc8").units)
    else:
        missing = [f"{n}.weight" for n in present if f"{n}.weight" not in tensors]
        if missing:
            raise LayoutError(f"weights lack {', '.join(missing)} needed by the model's layers.")
    hwio = canonical_to_hwio({k: v for k, v in tensors.items() if k.split(".")[0] in present}, spec)
    for name, (kernel, bias) in hwio.items():
        layer = model.get_layer(name)
        expected = tuple(layer.kernel.shape)
        if kernel.shape != expected:
            raise LayoutError(f"layer '{name}': expected kernel shape {expected}, received {kernel.shape}.")
        layer.set_weights([kernel, bias])
    return model


def load_into(model: keras.Model, weights: str) -> keras.Model:
    """Load a registry name or weight file (any supported format) into the model."""
    from alexnet_lab.weights import load_weights

    bundle = load_weights(weights)
    tensors = dict(bundle.tensors)
    if "fc8" not in _weight_layers(model):
        tensors = {k: v for k, v in tensors.items() if not k.startswith(("fc6.", "fc7.", "fc8."))}
    return from_canonical(model, tensors)
