"""PyTorch's default initialisation as canonical numpy arrays, for Keras runs from scratch.

Keras initialises kernels with glorot_uniform; PyTorch's Conv2d / Linear use kaiming_uniform
with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike. On the
fully connected layers Glorot is about twice as wide, and at the recipes' learning rates (0.05,
SGD with momentum) a Keras-initialised AlexNet diverged where the PyTorch one trained (train loss
17 vs 2.4 after one epoch on the synthetic data). Starting the Keras loop from the PyTorch
scheme makes the two loops train the same model the same way. BatchNorm starts at weight 1,
bias 0, running mean 0, running variance 1 in both frameworks.
"""

from __future__ import annotations

import math

import numpy as np

from alexnet_lab.core.spec import ArchSpec


def torch_default_init(spec: ArchSpec, num_classes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Canonical float32 tensors drawn as PyTorch's reset_parameters() draws them."""
    shapes = spec.canonical_shapes(num_classes)
    tensors: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        layer, part = key.rsplit(".", 1)
        if layer in spec.bn_names:
            fill = 1.0 if part in ("weight", "running_var") else 0.0
            tensors[key] = np.full(shape, fill, np.float32)
            continue
        fan_in = math.prod(shapes[f"{layer}.weight"][1:])  # in/groups * kH * kW, or in for a dense layer
        bound = 1.0 / math.sqrt(fan_in)
        tensors[key] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return tensors
