"""Pretrained weights into a model: what to build for them (:func:`plan_build`, the neutral half
of every framework's one build route, ``build_model``), and which layers to load or re-initialise.

Framework-neutral: :func:`select_for_finetune` decides on canonical tensors, and
:func:`load_pretrained` hands the selection to either adapter's ``from_canonical(...,
partial=True)``, so the loaded layers hold the file's values and the others keep the fresh
initialisation the model was built with. The head (fc8) is left out when the number of classes
differs from the weights'; `skip_layers` (e.g. ``("fc7",)`` to re-train fc7 and fc8) are left
out as well. Both decisions are logged, so a run's log says what was not pretrained.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError, did_you_mean
from alexnet_lab.core.partial_layout import layer_of
from alexnet_lab.core.spec import DEFAULT_VARIANT, ArchSpec, get_arch
from alexnet_lab.frameworks.weight_io import converter
from alexnet_lab.weights.catalog import resolve_weights_name
from alexnet_lab.weights.files import load_weights

log = logging.getLogger(__name__)

HEAD = "fc8"


def network_order(spec: ArchSpec) -> tuple[str, ...]:
    """Layers that hold weights, input to output: conv1 [bn1] conv2 ... conv5 [bn5] fc6 fc7 fc8."""
    bn_of = {f"conv{name[2:]}": name for name in spec.bn_names}  # bn<i> follows conv<i>
    convs = [name for conv in spec.conv_names for name in (conv, bn_of.get(conv)) if name]
    return (*convs, "fc6", "fc7", "fc8")


def _check_skip_layers(spec: ArchSpec, skip_layers: Iterable[str]) -> tuple[str, ...]:
    """The skip names in network order; unknown names raise with a close match."""
    names = network_order(spec)
    skip = tuple(skip_layers) if not isinstance(skip_layers, str) else (skip_layers,)
    for name in skip:
        if name not in names:
            raise UserInputError(
                f"unknown layer '{name}' in skip_layers; expected layers of the '{spec.name}' variant: "
                f"{', '.join(names)}.{did_you_mean(str(name), names)}"
            )
    return tuple(name for name in names if name in skip)


def select_for_finetune(bundle: WeightBundle, num_classes: int | None = None,
                        skip_layers: Iterable[str] = ()) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Split pretrained weights into the tensors to load and the layers to re-initialise.

    Args:
        bundle: the pretrained weights.
        num_classes: classes of the model being fine-tuned; None keeps the weights' own.
        skip_layers: stable layer names (`conv1` ... `fc8`) whose pretrained values are not
            loaded, e.g. ``("fc7",)`` to re-train the last two layers.

    Returns:
        (tensors to load, re-initialised layer names in network order).

    Raises:
        UserInputError: num_classes below 1, or an unknown layer name (with a close match).
    """
    spec = bundle.arch
    skip = _check_skip_layers(spec, skip_layers)
    wanted = bundle.num_classes if num_classes is None else int(num_classes)
    if wanted < 1:
        raise UserInputError(f"num_classes must be at least 1; received {num_classes}.")
    reinit = list(skip)
    if wanted != bundle.num_classes and HEAD not in reinit:
        reinit.append(HEAD)
        log.warning("%s re-initialised for %d classes (weights have %d)", HEAD, wanted, bundle.num_classes)
    if skip:
        log.info("not loading pretrained %s (skip_layers): they keep their fresh initialisation", ", ".join(skip))
    tensors = {key: value for key, value in bundle.tensors.items() if layer_of(key) not in reinit}
    return tensors, tuple(name for name in network_order(spec) if name in reinit)


def _check_model(adapter: Any, model: Any, bundle: WeightBundle, num_classes: int | None) -> int | None:
    """The model's class count, after checking it against the variant and `num_classes`."""
    variant = adapter.model_variant(model)
    if variant != bundle.meta.variant:
        raise UserInputError(
            f"the weights are for the '{bundle.meta.variant}' variant but the model is '{variant}'; "
            f"build the model with variant='{bundle.meta.variant}'."
        )
    model_classes = adapter.model_num_classes(model)
    if num_classes is not None and model_classes is not None and num_classes != model_classes:
        raise UserInputError(
            f"num_classes={num_classes} but the model's fc8 has {model_classes} outputs; build the model "
            "with the number of classes you fine-tune for, or leave num_classes out."
        )
    return model_classes


def load_pretrained(model: Any, framework: str, weights: WeightBundle | str | os.PathLike[str],
                    num_classes: int | None = None, skip_layers: Iterable[str] = ()) -> list[str]:
    """Load pretrained weights into a freshly built model for fine-tuning.

    Args:
        model: a model from ``get_backend(framework).build_model`` (or the Keras ``AlexNet``).
        framework: 'torch' or 'keras'.
        weights: a WeightBundle, registry name or weight file.
        num_classes: the model's number of classes; taken from the model when None.
        skip_layers: layers not to load (see :func:`select_for_finetune`).

    Returns:
        The layers that keep their fresh initialisation, in network order (fc8 among them when
        the class count differs). Layers the model lacks (a Keras model without the top) are
        neither loaded nor listed.

    Raises:
        UserInputError: unknown framework or layer, or a model of another variant.
        LayoutError: a pretrained tensor does not fit the model (every mismatch listed).
    """
    adapter = converter(framework)
    bundle = weights if isinstance(weights, WeightBundle) else load_weights(weights)
    model_classes = _check_model(adapter, model, bundle, num_classes)
    tensors, reinit = select_for_finetune(bundle, model_classes, skip_layers)
    present = set(adapter.weight_layers(model)) | set(bundle.arch.bn_names)
    absent = sorted({layer_of(key) for key in tensors} - present)
    if absent:
        log.info("the model has no %s layers (built without the top); their weights are not loaded", ", ".join(absent))
    adapter.from_canonical(model, {k: v for k, v in tensors.items() if layer_of(k) in present}, partial=True)
    return [name for name in reinit if name in present]


def bundle_for(weights: WeightBundle | str | os.PathLike[str], variant: str) -> WeightBundle:
    """A WeightBundle from a registry name (torchvision's 'DEFAULT' / 'IMAGENET1K_V1' resolve for
    `variant`), a weight file, a run folder, or a bundle (returned as it is)."""
    source = resolve_weights_name(weights, variant)
    return source if isinstance(source, WeightBundle) else load_weights(source)


@dataclass(frozen=True)
class BuildPlan:
    """What a framework's build_model builds and loads, decided once for both frameworks."""

    spec: ArchSpec
    num_classes: int  # the caller's, else the weights', else the variant's own (spec.num_classes)
    input_size: int | None  # the caller's, else the size the weights were trained at; None: the spec's
    bundle: WeightBundle | None  # the weights to load, None for a fresh initialisation
    weights_name: str | None  # where they came from (a registry name, a file), for pretrained_cfg


def plan_build(variant: str | ArchSpec | None = None, num_classes: int | None = None,
               weights: WeightBundle | str | os.PathLike[str] | None = None,
               input_size: int | None = None) -> BuildPlan:
    """Resolve a build request the way every builder does (timm's build_model_with_cfg): the
    variant is the caller's or the weights'; the class count comes from the caller, the weights or
    the variant's spec, never from a literal.

    Raises:
        UserInputError: an unknown variant or weights name, weights of another variant, or an
            input size the variant's classifier cannot read.
    """
    spec = None if variant is None else get_arch(variant)
    bundle = None if weights is None else bundle_for(weights, spec.name if spec else DEFAULT_VARIANT)
    name = None
    if bundle is not None:
        if spec is not None and spec.name != bundle.meta.variant:
            raise UserInputError(f"the weights are for the '{bundle.meta.variant}' variant, not '{spec.name}'; drop "
                                 f"variant= or pass variant='{bundle.meta.variant}'.")
        spec = spec or bundle.arch
        input_size = input_size or bundle.meta.input_size or bundle.meta.preprocess.crop
        name = bundle.meta.source if isinstance(weights, WeightBundle) else str(resolve_weights_name(weights, spec.name))
    spec = spec or get_arch(DEFAULT_VARIANT)
    if num_classes is None:
        num_classes = bundle.num_classes if bundle is not None else spec.num_classes
    if input_size is not None:
        spec.check_input_size(input_size)
    return BuildPlan(spec, num_classes, input_size, bundle, name)
