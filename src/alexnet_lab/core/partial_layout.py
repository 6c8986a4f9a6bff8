"""Validation of a *subset* of canonical tensors, for partial loads (fine-tuning).

A partial load sets only the layers it is given and leaves the others as initialised. Every
given tensor must still be a canonical key of the model with the model's shape, and layers come
whole (weight and bias together), so a kernel is never paired with a stale bias. Both framework
adapters call :func:`check_partial_layout` so the rules and the messages are the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from alexnet_lab.core.errors import LayoutError, did_you_mean
from alexnet_lab.core.spec import ArchSpec


def layer_of(key: str) -> str:
    """'fc7.weight' -> 'fc7'."""
    return key.split(".", 1)[0]


def partial_problems(tensors: Mapping[str, np.ndarray], spec: ArchSpec, num_classes: int,
                     present: Collection[str] | None = None) -> list[str]:
    """Every way a subset of canonical tensors fails to fit a model (empty when it fits).

    Args:
        tensors: the canonical tensors to load (any subset of whole layers).
        spec: the model's variant.
        num_classes: the model's fc8 width.
        present: the layers the model has (all of the variant's when None), e.g. conv1-conv5
            (and any BatchNorm layers) for a Keras model built with include_top=False.
    """
    expected = {key: shape for key, shape in spec.canonical_shapes(num_classes).items()
                if present is None or layer_of(key) in present}
    problems = []
    for key, value in tensors.items():
        if key not in expected:
            problems.append(f"unexpected key '{key}' (the model has no such weight){did_you_mean(key, expected)}")
        elif tuple(np.shape(value)) != expected[key]:
            problems.append(f"'{key}': expected shape {expected[key]}, received {tuple(np.shape(value))}")
    given_layers = {layer_of(key) for key in tensors if key in expected}
    missing = [key for key in expected if layer_of(key) in given_layers and key not in tensors]
    problems.extend(f"missing '{key}' (layers load whole, e.g. weight and bias together)" for key in missing)
    return problems


def check_partial_layout(tensors: Mapping[str, np.ndarray], spec: ArchSpec, num_classes: int,
                         present: Collection[str] | None = None) -> None:
    """Raise one LayoutError listing every problem :func:`partial_problems` finds.

    Raises:
        LayoutError: when any given tensor does not fit the model.
    """
    problems = partial_problems(tensors, spec, num_classes, present)
    if problems:
        raise LayoutError(
            f"weights do not fit the '{spec.name}' AlexNet with {num_classes} classes ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}): " + "; ".join(problems)
        )
