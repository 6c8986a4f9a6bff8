"""The one interface every framework implements: :class:`Backend`.

An implementation is a package under ``alexnet_lab.frameworks`` whose ``__init__`` defines these
names at module level (a module satisfies a Protocol by its attributes). Everything outside
``frameworks/`` reaches PyTorch or Keras through :func:`alexnet_lab.frameworks.get_backend`, which
returns the package typed as a Backend. ``tests/unit/test_layout.py`` checks that each
implementation has every member with the same parameters.

Arrays cross the interface as numpy, images as NHWC float32 batches, weights as canonical
tensors (:mod:`alexnet_lab.core.layout`); models, devices and quantized models stay opaque.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from alexnet_lab.core.bundle import ModelMeta, WeightBundle

MetaFactory = Callable[[str, int], ModelMeta]  # (variant, num_classes) -> metadata for a file that has none


@runtime_checkable
class Backend(Protocol):
    """What the rest of the package may ask of a framework."""

    FRAMEWORK: str  # the name it is registered under: 'torch', 'keras'
    WEIGHT_SUFFIXES: tuple[str, ...]  # file endings of its own weight format (read_weights / write_weights)
    # core.exports.EXPORT_FORMATS name -> exporter(bundle, path, metadata): traces the bundle's model
    # and writes the export at `path` (run in a process of its own, see inference.export)
    EXPORTERS: Mapping[str, Callable[[WeightBundle, Path, Mapping[str, str]], None]]

    # building and converting
    def build_model(self, variant: Any = None, num_classes: int | None = None, dropout: float = 0.5,
                    input_size: int | None = None, *, weights: Any = None, in_chans: int = 3) -> Any:
        """The one build-and-load route: a model of the variant (default the weights', else
        core.spec.DEFAULT_VARIANT) with num_classes outputs (default the weights', else the
        variant's own), fresh unless `weights` is given (weights.pretrained.plan_build decides)."""

    def from_canonical(self, model: Any, tensors: Mapping[str, np.ndarray], *, partial: bool = False) -> Any:
        """Load canonical tensors into the model (every layer, or only those given when partial)."""

    def to_canonical(self, model: Any) -> dict[str, np.ndarray]:
        """The model's weights as canonical tensors."""

    def model_variant(self, model: Any) -> str:
        """The variant name ('owt', 'original', 'cifar') the model was built as."""

    def model_num_classes(self, model: Any) -> int | None:
        """fc8's outputs, or None for a model built without the top."""

    def weight_layers(self, model: Any) -> tuple[str, ...]:
        """The stable names (conv1 ... fc8) of the weight layers the model has."""

    # running
    def resolve_device(self, name: str = "auto") -> Any:
        """auto|cpu|cuda[:N]|gpu[:N]|mps as this framework's device; UserInputError if absent."""

    def to_device(self, model: Any, device: str = "auto") -> Any:
        """The model on `device`."""

    def predict_logits(self, model: Any, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 logits for a preprocessed NHWC batch, in inference mode."""

    def cast_for_inference(self, model: Any, precision: str) -> Any:
        """The model holding its weights in the inference precision ('fp32' or 'bf16')."""

    def auto_inference_precision(self, device: str = "auto") -> str:
        """What inference's `auto` runs on `device` (core.precision.inference_auto)."""

    def check_int8(self) -> None:
        """UserInputError when int8 inference cannot run in this process."""

    def quantize_int8(self, model: Any, calibration_nhwc: np.ndarray | None, batch_size: int = 32) -> Any:
        """A post-training int8 copy of `model` for CPU inference; `model` itself is left as it is.

        Args:
            model: a float AlexNet of this framework (any variant).
            calibration_nhwc: preprocessed float32 N x H x W x 3 images like the ones it will
                see; a few hundred are enough to set the activation ranges.
            batch_size: calibration batch size.

        Raises:
            UserInputError: no calibration images (core.precision.require_calibration).
        """

    def predict_logits_int8(self, model: Any, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 logits of the int8 model."""

    # seeing inside (tap names: core.explain.tap_names; conv1..conv5, fc6, fc7 after their ReLU)
    def layer_outputs(self, model: Any, batch_nhwc: np.ndarray, layers: Sequence[str],
                      batch_size: int = 32) -> dict[str, np.ndarray]:
        """float32 outputs of the named layers for a preprocessed NHWC batch, in one pass:
        N x H x W x C for conv-side layers, N x F for fc6-fc8. UserInputError on an unknown name."""

    def class_gradients(self, model: Any, batch_nhwc: np.ndarray, layer: str,
                        classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(layer output, d logit[class] / d layer output, logits) for a preprocessed NHWC batch in
        inference mode; `layer` may be 'input' (saliency); classes: one per image, None for the top."""

    # files
    def read_weights(self, path: str | os.PathLike[str], default_meta: MetaFactory | None = None) -> WeightBundle:
        """A WeightBundle from this framework's weight file (checked against weights.formats.limits first)."""

    def write_weights(self, bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
        """Write this framework's weight file, atomically, metadata included."""
