"""alexnet-lab: AlexNet in PyTorch and Keras 3 with weights that are provably the same model.

The public face, in the names torchvision, timm and keras.applications users know::

    import alexnet_lab
    model = alexnet_lab.alexnet("torch", weights="imagenet", num_classes=10)   # a torch.nn.Module
    model = alexnet_lab.alexnet("keras", weights="imagenet")                   # a keras.Model
    preprocess = alexnet_lab.transforms("imagenet")       # the weights' own preprocessing
    top5 = alexnet_lab.predict(["cat.jpg"], weights="imagenet")
    report = alexnet_lab.verify("my_weights.safetensors")
    bundle = alexnet_lab.load_weights("imagenet"); alexnet_lab.save_weights(bundle, "w.weights.h5")

Importing the package loads no framework: PyTorch or Keras is imported when a call needs it.
Where the rest lives: core/ (numpy-only truths), weights/, frameworks/ (the Backend protocol
and one implementation per framework), data/, inference/, evaluate/, verify/, train/, bench/, cli/.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from alexnet_lab.core.version import __version__
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK  # the names only: no framework

# names re-exported from the packages below, imported on first use
_LAZY = {
    "create_model": "alexnet_lab.frameworks.torch.hub",
    "list_models": "alexnet_lab.weights.catalog",
    "load_weights": "alexnet_lab.weights.files",
    "save_weights": "alexnet_lab.weights.files",
    "WeightBundle": "alexnet_lab.core.bundle",
    "get_backend": "alexnet_lab.frameworks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alexnet_lab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def _bundle(weights: Any, variant: str):
    """weights.pretrained.bundle_for, imported on use (it loads no framework, but numpy and the registry)."""
    from alexnet_lab.weights.pretrained import bundle_for

    return bundle_for(weights, variant)


def alexnet(framework: str = DEFAULT_FRAMEWORK, weights: Any = None, num_classes: int | None = None, variant: str | None = None,
            dropout: float = 0.5) -> Any:
    """Build AlexNet in either framework, with pretrained weights in one call: a thin call into
    the framework's one build route (``get_backend(framework).build_model``).

    Args:
        framework: 'torch' (returns a torch.nn.Module, torchvision's module tree) or 'keras'
            (returns a keras.Model taking NHWC input); both output logits.
        weights: None (fresh initialisation), a registry name ('imagenet', 'torchvision',
            'bvlc', torchvision's 'DEFAULT' / 'IMAGENET1K_V1'), a weight file in any supported
            format, a training run folder, a Hub repository ('hf://OWNER/REPO[@REVISION]',
            docs/hub.md), or a WeightBundle.
        num_classes: fc8's width. Default: the weights', or the variant's own without weights
            (the CIFAR variants have 10). A width other than the weights' loads every layer
            but fc8, which keeps its fresh initialisation (timm's rule; logged).
        variant: 'owt' (torchvision's network), 'original' (2012 / Caffe), 'cifar' or 'cifar-wide';
            default the weights' variant, else 'owt'. A variant other than the weights' is refused.
        dropout: dropout probability around fc6 and fc7.

    Raises:
        UserInputError: an unknown framework, variant or weights name, or weights of another variant.
    """
    from alexnet_lab.frameworks import get_backend

    return get_backend(framework).build_model(variant, num_classes, dropout, weights=weights)


def transforms(weights: Any = "imagenet", variant: str = "owt") -> Callable[[Any], Any]:
    """The preprocessing the weights were trained with, as a callable (torchvision's
    ``weights.transforms()``): an image file path or an H x W x 3 uint8 RGB array in, a float32
    H x W x 3 array out (resize, centre crop, scale, normalise, channel order as the weights
    need). Add a batch axis and feed it to a Keras model; transpose to CHW for PyTorch.

    The callable's ``spec`` attribute is the PreprocessSpec (``spec.describe()`` says it in words).
    """
    from alexnet_lab.core.bundle import WeightBundle
    from alexnet_lab.core.preprocessing import preprocess
    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.weights.catalog import resolve_weights_name
    from alexnet_lab.weights.registry import get_entry, is_registry_name

    source = resolve_weights_name(weights, variant)
    if isinstance(source, WeightBundle):
        spec = source.meta.preprocess
    elif isinstance(source, str) and is_registry_name(source):
        spec = get_entry(source).preprocess  # known without downloading the file
    else:
        spec = _bundle(source, variant).meta.preprocess

    def apply(image: Any) -> Any:
        array = read_image_rgb(image) if isinstance(image, (str, os.PathLike)) else image
        return preprocess(array, spec)

    apply.spec = spec  # type: ignore[attr-defined]
    return apply


def list_weights() -> dict[str, str]:
    """The registry's weight names -> a one-line description (variant, classes, source)."""
    from alexnet_lab.weights.registry import get_entry, registry_names

    entries = [get_entry(name) for name in registry_names()]
    return {e.name: f"{e.variant}, {e.preprocess.describe()}: {e.description}" for e in entries}


def predict(images: Sequence[Any], weights: Any = "imagenet", framework: str = DEFAULT_FRAMEWORK, top: int = 5,
            device: str = "auto", precision: str = "fp32") -> list[list[dict]]:
    """Top-`top` classes for each image (file paths or H x W x 3 uint8 RGB arrays), preprocessed
    the way the weights expect. Each prediction is {rank, index, label, probability}.

    Args:
        precision: fp32 (exact), bf16 or auto (bf16 where the CPU or GPU computes it natively).
            int8 needs calibration images: use `alexnet predict --precision int8 --calibration DIR`.
    """
    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.inference.predict import predict_images

    bundle = _bundle(weights, "owt")
    arrays = [read_image_rgb(i) if isinstance(i, (str, os.PathLike)) else i for i in images]
    results = predict_images(bundle, arrays, framework, k=top, device=device, precision=precision)
    return [[p.to_dict() for p in row] for row in results]


def verify(weights: Any, against: str | None = None, images: str | None = None, framework_parity: bool = True,
           tolerance: float = 0.0) -> Any:
    """Every check `alexnet verify` runs (structure, integrity, registry hash, provenance, and
    PyTorch-vs-Keras parity); returns the VerifyReport (`.passed`, `.checks`)."""
    from alexnet_lab.verify import VerifyOptions, run_verify

    return run_verify(weights, VerifyOptions(against=against, images=images, framework_parity=framework_parity,
                                             tolerance=tolerance))


__all__ = ["WeightBundle", "__version__", "alexnet", "create_model", "get_backend", "list_models", "list_weights",
           "load_weights", "predict", "save_weights", "transforms", "verify"]
