"""Canonical weights <-> PyTorch state dict.

Canonical *is* the PyTorch layout, so nothing is transposed here: only the keys change
(`conv1.weight` <-> `features.0.weight` for owt, `features.conv1.weight` otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from alexnet_lab.core.layout import as_canonical, check_layout
from alexnet_lab.torch_backend.model import AlexNet


def state_dict_keys(model: AlexNet) -> dict[str, str]:
    """Canonical key -> state-dict key, for every weight of the model."""
    return {
        f"{name}.{part}": f"{model.state_dict_prefix(name)}.{part}"
        for name in model.spec.layer_names
        for part in ("weight", "bias")
    }


def to_canonical(model: AlexNet) -> dict[str, np.ndarray]:
    """The model's weights as canonical float32 numpy arrays (copies)."""
    state = model.state_dict()
    return {key: state[sd_key].detach().cpu().float().numpy().copy() for key, sd_key in state_dict_keys(model).items()}


def canonical_to_state_dict(model: AlexNet, tensors: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    check_layout(tensors, model.spec, model.num_classes)
    return {sd_key: torch.from_numpy(np.array(tensors[key], dtype=np.float32)) for key, sd_key in state_dict_keys(model).items()}


def from_canonical(model: AlexNet, tensors: Mapping[str, np.ndarray]) -> AlexNet:
    """Load canonical weights into the model (strict: every key, every shape) and return it."""
    model.load_state_dict(canonical_to_state_dict(model, tensors), strict=True)
    return model


def state_dict_to_canonical(state: Mapping[str, torch.Tensor], model: AlexNet) -> dict[str, np.ndarray]:
    """Canonical arrays from a state dict laid out like `model` (e.g. a torchvision file)."""
    tensors = {}
    for key, sd_key in state_dict_keys(model).items():
        if sd_key in state:
            tensors[key] = state[sd_key].detach().cpu().float().numpy()
    extra = {k for k in state if k not in set(state_dict_keys(model).values())}
    for key in sorted(extra):
        tensors[key] = np.asarray(state[key].detach().cpu().numpy())
    return as_canonical(tensors, model.spec, model.num_classes)
