"""Canonical weights <-> Keras model weights.

Keras kernels are HWIO: conv (kH, kW, in/groups, out) = canonical.transpose(2, 3, 1, 0), dense
(in, out) = canonical.T, and fc6's rows follow the H,W,C order of Keras' channels-last Flatten
(see core.transforms). Layers are found by their stable names conv1 ... fc8.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from alexnet_lab.core.errors import LayoutError, UserInputError
from alexnet_lab.core.layout import check_layout
from alexnet_lab.core.partial_layout import check_partial_layout
from alexnet_lab.core.spec import BN_PARTS, VARIANTS, get_arch
from alexnet_lab.core.transforms import canonical_to_hwio, hwio_to_canonical


def model_variant(model: keras.Model) -> str:
    """The variant of a model built by this adapter. keras.saving.load_model and clone_model drop
    the `alexnet_variant` attribute, so it is recovered from conv1's filters, kernel and stride.

    Raises:
        UserInputError: the model has no conv1 of any variant (not an AlexNet of this project).
    """
    variant = getattr(model, "alexnet_variant", None)
    if variant:
        return variant
    conv1 = next((layer for layer in model.layers if layer.name == "conv1"), None)
    for spec in VARIANTS.values():
        first = spec.convs[0]
        if conv1 is not None and (conv1.filters, tuple(conv1.kernel_size), tuple(conv1.strides)) == (
                first.out_channels, (first.kernel,) * 2, (first.stride,) * 2):
            return spec.name
    raise UserInputError(
        f"model '{model.name}' is not an AlexNet built by alexnet_lab: expected a 'conv1' layer of one of the "
        f"variants {', '.join(VARIANTS)}; received {'no conv1' if conv1 is None else conv1.get_config()['filters']}."
    )


def _weight_layers(model: keras.Model) -> list[str]:
    names = {layer.name for layer in model.layers}
    return [n for n in get_arch(model_variant(model)).layer_names if n in names]


def weight_layers(model: keras.Model) -> tuple[str, ...]:
    """The stable names of the model's weight layers (conv1-conv5 only without the top)."""
    return tuple(_weight_layers(model))


def model_num_classes(model: keras.Model) -> int | None:
    """The width of fc8, or None for a model built without the top."""
    return model.get_layer("fc8").units if "fc8" in _weight_layers(model) else None


def to_canonical(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights as canonical float32 arrays (conv layers only without the top)."""
    spec = get_arch(model_variant(model))
    layers = {}
    for name in _weight_layers(model):
        kernel, bias = model.get_layer(name).get_weights()
        layers[name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
    tensors = hwio_to_canonical(layers, spec)
    for bn in spec.bn_names:  # Keras order gamma, beta, moving mean, moving variance = BN_PARTS
        for part, value in zip(BN_PARTS, model.get_layer(bn).get_weights()):
            tensors[f"{bn}.{part}"] = np.asarray(value, np.float32)
    return tensors


def _set_batchnorm(model: keras.Model, tensors: Mapping[str, np.ndarray]) -> None:
    for bn in get_arch(model_variant(model)).bn_names:
        if f"{bn}.weight" not in tensors:  # left out of a partial load; a full load checked them all
            continue
        model.get_layer(bn).set_weights([np.asarray(tensors[f"{bn}.{part}"], np.float32) for part in BN_PARTS])


def _check(model: keras.Model, tensors: Mapping[str, np.ndarray], present: list[str], partial: bool) -> None:
    spec = get_arch(model_variant(model))
    num_classes = model_num_classes(model)
    if partial:
        # without fc8 the class count matters to no layer present; any value passes the check
        check_partial_layout(tensors, spec, num_classes or 1, [*present, *spec.bn_names])
    elif num_classes is not None:
        check_layout(tensors, spec, num_classes)
    else:
        missing = [f"{n}.weight" for n in present if f"{n}.weight" not in tensors]
        if missing:
            raise LayoutError(f"weights lack {', '.join(missing)} needed by the model's layers.")


def from_canonical(model: keras.Model, tensors: Mapping[str, np.ndarray], *, partial: bool = False) -> keras.Model:
    """Set the model's weights from canonical arrays and return the model.

    Args:
        model: a model built by this adapter (stable layer names).
        tensors: canonical arrays.
        partial: False: every layer the model has must be given. True: set only the layers
            given (whole layers, each shape checked, every mismatch listed at once); the
            model's other layers keep their current (fresh) values.

    Raises:
        LayoutError: when the tensors do not fit the model.
    """
    spec = get_arch(model_variant(model))
    present = _weight_layers(model)
    _check(model, tensors, present, partial)
    hwio = canonical_to_hwio({k: v for k, v in tensors.items() if k.split(".")[0] in present}, spec)
    for name, (kernel, bias) in hwio.items():
        layer = model.get_layer(name)
        expected = tuple(layer.kernel.shape)
        if kernel.shape != expected:
            raise LayoutError(f"layer '{name}': expected kernel shape {expected}, received {kernel.shape}.")
        layer.set_weights([kernel, bias])
    _set_batchnorm(model, tensors)
    return model
