"""The canonical weight layout every conversion passes through, and its validator.

Canonical = PyTorch conventions as float32 numpy arrays under stable keys
`conv1.weight ... fc8.bias`: conv weights (out, in/groups, kH, kW), dense weights (out, in),
and fc6's input index ordered C,H,W (the order torch.flatten gives for an NCHW tensor).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alexnet_lab.core.errors import LayoutError
from alexnet_lab.core.spec import VARIANTS, ArchSpec, get_arch

CANONICAL_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")

Tensors = Mapping[str, np.ndarray]


def canonical_keys(layers: tuple[str, ...] = CANONICAL_LAYERS) -> list[str]:
    return [f"{layer}.{part}" for layer in layers for part in ("weight", "bias")]


def infer_num_classes(tensors: Tensors) -> int:
    """Number of classes from the fc8 bias (or weight)."""
    for key in ("fc8.bias", "fc8.weight"):
        if key in tensors:
            return int(np.shape(tensors[key])[0])
    raise LayoutError("cannot tell the number of classes: the weights have no 'fc8.bias' or 'fc8.weight'.")


def infer_variant(tensors: Tensors) -> ArchSpec:
    """The variant whose conv1/conv2 shapes the weights have.

    Raises:
        LayoutError: when no known variant matches.
    """
    probe = ("conv1.weight", "conv2.weight")
    for spec in VARIANTS.values():
        shapes = spec.canonical_shapes()
        if all(k in tensors and tuple(np.shape(tensors[k])) == shapes[k] for k in probe):
            return spec
    got = {k: tuple(np.shape(tensors[k])) for k in probe if k in tensors}
    raise LayoutError(
        f"the weights match no known AlexNet variant ({', '.join(VARIANTS)}); "
        f"received conv1/conv2 shapes {got or 'missing'}."
    )


def layout_problems(tensors: Tensors, variant: str | ArchSpec, num_classes: int | None = None) -> list[str]:
    """Every way the tensors differ from the canonical layout (empty when they match)."""
    spec = get_arch(variant)
    if num_classes is None:
        num_classes = infer_num_classes(tensors) if ("fc8.bias" in tensors or "fc8.weight" in tensors) else 1000
    expected = spec.canonical_shapes(num_classes)
    problems = []
    for key, shape in expected.items():
        if key not in tensors:
            problems.append(f"missing '{key}' (expected shape {shape})")
        elif tuple(np.shape(tensors[key])) != shape:
            problems.append(f"'{key}': expected shape {shape}, received {tuple(np.shape(tensors[key]))}")
    problems.extend(f"unexpected key '{key}'" for key in tensors if key not in expected)
    return problems


def check_layout(tensors: Tensors, variant: str | ArchSpec, num_classes: int | None = None) -> None:
    """Raise one LayoutError that lists every missing, extra and mis-shaped tensor.

    Raises:
        LayoutError: when anything differs from the canonical layout of the variant.
    """
    problems = layout_problems(tensors, variant, num_classes)
    if problems:
        spec = get_arch(variant)
        raise LayoutError(
            f"weights do not fit the '{spec.name}' AlexNet layout ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}): " + "; ".join(problems)
        )


def as_canonical(tensors: Tensors, variant: str | ArchSpec, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Validate and return a plain dict of contiguous float32 arrays in layer order."""
    check_layout(tensors, variant, num_classes)
    spec = get_arch(variant)
    n = num_classes if num_classes is not None else infer_num_classes(tensors)
    return {key: np.ascontiguousarray(tensors[key], dtype=np.float32) for key in spec.canonical_shapes(n)}
