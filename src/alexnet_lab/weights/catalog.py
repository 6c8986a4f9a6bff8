"""Model names and pretrained configs in timm's style, framework-neutral.

timm separates the architecture (a name like `alexnet_owt`), the pretrained weights (a tag:
`alexnet_owt.tv_in1k`) and the data config (input size, mean, std, interpolation, crop). Here
the architecture is an ArchSpec, the weights a registry WeightEntry and the data config its
PreprocessSpec; :func:`model_cfg` lays them out as the `pretrained_cfg` dict timm code reads.
Every table here is a projection of core.spec.VARIANTS and the weights table (weights.registry).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.core.spec import DEFAULT_VARIANT, VARIANTS, ArchSpec, get_arch
from alexnet_lab.weights.registry import DEFAULT_ENTRIES, ENTRIES, default_preprocess


def model_name(variant: str) -> str:
    """timm's architecture name of a variant: 'cifar-wide' -> 'alexnet_cifar_wide'."""
    return f"alexnet_{variant.replace('-', '_')}"


# model name -> variant; `alexnet` is torchvision's name for the default (owt) network
MODEL_NAMES: dict[str, str] = {"alexnet": DEFAULT_VARIANT, **{model_name(v): v for v in VARIANTS}}
# variant -> (registry name of its public weights, timm-style tag); cifar has none
PRETRAINED: dict[str, tuple[str, str]] = {v: (e.name, e.tag) for v, e in DEFAULT_ENTRIES.items()}
# torchvision's weight enum names, accepted where a weights name is; DEFAULT: the variant's own
WEIGHT_ALIASES = {**{enum: e.name for e in ENTRIES.values() for enum in e.enum_names}, "DEFAULT": None}
TORCHVISION_ENUM = "AlexNet_Weights"  # torchvision's class; 'AlexNet_Weights.IMAGENET1K_V1' is accepted too


def torchvision_enum_strings() -> dict[str, str]:
    """torchvision's full enum strings -> registry name ('AlexNet_Weights.IMAGENET1K_V1' -> 'torchvision')."""
    return {f"{TORCHVISION_ENUM}.{enum}": name for enum, name in WEIGHT_ALIASES.items() if name}


def variant_of(model_name: str) -> str:
    """The variant a model name builds ('alexnet_owt' -> 'owt'); a tag after '.' is ignored.

    Raises:
        UserInputError: an unknown name, with the known ones and a close match.
    """
    base = model_name.split(".", 1)[0]
    if base in MODEL_NAMES:
        return MODEL_NAMES[base]
    raise unknown_name_error("model name", model_name, MODEL_NAMES)


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Model names matching a shell pattern, sorted; pretrained=True lists `name.tag` for the
    names that have public weights (timm's list_models)."""
    if pretrained:
        names = [f"{name}.{PRETRAINED[v][1]}" for name, v in MODEL_NAMES.items() if v in PRETRAINED]
    else:
        names = list(MODEL_NAMES)
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def default_weights(variant: str) -> str | None:
    """The registry name of a variant's public weights, or None (cifar)."""
    return PRETRAINED[variant][0] if variant in PRETRAINED else None


def resolve_weights_name(weights: Any, variant: str) -> Any:
    """torchvision's 'IMAGENET1K_V1' / 'DEFAULT' (also 'AlexNet_Weights.IMAGENET1K_V1', as
    torchvision's own verify() reads them) -> our registry name; anything else unchanged."""
    if isinstance(weights, str) and weights.startswith(TORCHVISION_ENUM + "."):
        weights = weights[len(TORCHVISION_ENUM) + 1:]
    if isinstance(weights, str) and weights in WEIGHT_ALIASES:
        return WEIGHT_ALIASES[weights] or default_weights(variant) or weights
    return weights


def model_cfg(variant: str | ArchSpec, weights_name: str | None, num_classes: int,
              preprocess: PreprocessSpec | None = None, in_chans: int = 3) -> dict[str, Any]:
    """timm's pretrained_cfg for a model of `variant` (a name or an ArchSpec of your own): input
    size, interpolation, mean / std on the 0-1 scale, crop_pct, and where the weights came from
    (None for random weights)."""
    spec = get_arch(variant)
    variant = spec.name
    pre = preprocess or default_preprocess(variant)
    # ours: (pixel * scale - mean) / std; timm's: (pixel / 255 - mean') / std', so mean' = mean / u
    # and std' = std / u with u = 255 * scale (1 for torchvision's [0, 1] input, 255 for Caffe's)
    unit = 255.0 * pre.scale
    mean = tuple(m / unit for m in pre.mean)
    std = tuple(s / unit for s in (pre.std or (1.0, 1.0, 1.0)))
    pool = spec.feature_map_size(spec.input_size)  # forward_features' map at input_size, before any avg-pool
    tag = PRETRAINED[variant][1] if weights_name and variant in PRETRAINED and weights_name == PRETRAINED[variant][0] else None
    return {
        "architecture": model_name(variant),  # a MODEL_NAMES key
        "tag": tag,
        "weights": weights_name,
        "num_classes": num_classes,
        "input_size": (in_chans, spec.input_size, spec.input_size),
        "interpolation": pre.interpolation,
        "crop_pct": pre.crop / pre.resize if pre.resize_mode != "none" else 1.0,
        "crop_mode": "center" if pre.resize_mode == "shorter" else "squash",
        "channel_order": pre.channel_order,
        "mean": mean,
        "std": std,
        "pool_size": (pool, pool),
        "first_conv": "conv1",  # stable layer names: model.layer(name), and the canonical file's keys
        "classifier": "fc8",
        "preprocess": pre.to_dict(),
    }
