"""Canonical weights <-> PyTorch state dict.

Canonical *is* the PyTorch layout, so nothing is transposed here: only the keys change
(`conv1.weight` <-> `features.0.weight` for owt, `features.conv1.weight` otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from alexnet_lab.core.layout import as_canonical, check_layout
from alexnet_lab.core.partial_layout import check_partial_layout
from alexnet_lab.core.spec import BN_PARTS
from alexnet_lab.frameworks.torch.network import AlexNet


def state_dict_keys(model: AlexNet) -> dict[str, str]:
    """Canonical key -> state-dict key, for every weight (and BatchNorm statistic) of the model."""
    keys = {
        f"{name}.{part}": f"{model.state_dict_prefix(name)}.{part}"
        for name in weight_layers(model)
        for part in ("weight", "bias")
    }
    keys.update({f"{bn}.{part}": f"{model.state_dict_prefix(bn)}.{part}" for bn in model.spec.bn_names for part in BN_PARTS})
    return keys


def _batch_counters(model: AlexNet) -> dict[str, torch.Tensor]:
    """BatchNorm's num_batches_tracked: not part of the canonical layout (it only matters for
    momentum=None), so it is set to zero on load."""
    return {f"{model.state_dict_prefix(bn)}.num_batches_tracked": torch.tensor(0) for bn in model.spec.bn_names}


def to_canonical(model: AlexNet) -> dict[str, np.ndarray]:
    """The model's weights as canonical float32 numpy arrays (copies)."""
    state = model.state_dict()
    return {key: state[sd_key].detach().cpu().float().numpy().copy() for key, sd_key in state_dict_keys(model).items()}


def canonical_to_state_dict(model: AlexNet, tensors: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    check_layout(tensors, model.spec, model.num_classes)
    state = {sd_key: torch.from_numpy(np.array(tensors[key], dtype=np.float32)) for key, sd_key in state_dict_keys(model).items()}
    return {**state, **_batch_counters(model)}


def model_variant(model: AlexNet) -> str:
    """The variant the model was built as ('owt', 'original', 'cifar')."""
    return model.spec.name


def weight_layers(model: AlexNet) -> tuple[str, ...]:
    """The stable names of the model's weight layers: conv1 ... fc8, without fc8 when the model
    was built with num_classes=0 (its fc8 is an Identity)."""
    return tuple(name for name in model.spec.layer_names if name != "fc8" or model.num_classes)


def model_num_classes(model: AlexNet) -> int | None:
    """The width of fc8, or None for a model without one (num_classes=0)."""
    return model.num_classes or None


def from_canonical(model: AlexNet, tensors: Mapping[str, np.ndarray], *, partial: bool = False) -> AlexNet:
    """Load canonical weights into the model and return it.

    Args:
        model: the AlexNet to fill.
        tensors: canonical arrays.
        partial: False: every key and every shape must match (strict). True: load only the
            layers given (whole layers, each shape checked, every mismatch listed at once);
            the model's other layers keep their current (fresh) values.

    Raises:
        LayoutError: when the tensors do not fit the model.
    """
    if not partial:
        model.load_state_dict(canonical_to_state_dict(model, tensors), strict=True)
        return model
    check_partial_layout(tensors, model.spec, model.num_classes or 1, [*weight_layers(model), *model.spec.bn_names])
    keys = state_dict_keys(model)
    state = {keys[key]: torch.from_numpy(np.array(value, dtype=np.float32)) for key, value in tensors.items()}
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:  # cannot happen after the check; a bug, not user input
        raise RuntimeError(f"unexpected state-dict keys {result.unexpected_keys}")
    return model


def state_dict_to_canonical(state: Mapping[str, torch.Tensor], model: AlexNet) -> dict[str, np.ndarray]:
    """Canonical arrays from a state dict laid out like `model` (e.g. a torchvision file)."""
    tensors = {}
    for key, sd_key in state_dict_keys(model).items():
        if sd_key in state:
            tensors[key] = state[sd_key].detach().cpu().float().numpy()
    known = set(state_dict_keys(model).values()) | set(_batch_counters(model))
    extra = {k for k in state if k not in known}
    for key in sorted(extra):
        tensors[key] = np.asarray(state[key].detach().cpu().numpy())
    return as_canonical(tensors, model.spec, model.num_classes)
