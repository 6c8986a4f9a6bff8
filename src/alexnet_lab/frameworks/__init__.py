"""The frameworks: one typed interface (:class:`.protocol.Backend`) and one implementation per
framework (:mod:`.torch`, :mod:`.keras`), picked by name with :func:`get_backend`.

Importing this package loads no framework; an implementation is imported when first asked for.
To add a framework, add a package here whose ``__init__`` defines every Backend member, and its
name to FRAMEWORKS (its training parts go in ``alexnet_lab.train.<name>``, see train.trainers).
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.frameworks.protocol import Backend

# The framework registry: every fact about a framework that is needed without importing it. The
# names here are the ones everything else asks for (--framework choices, loops over frameworks).
FRAMEWORKS = {"torch": "alexnet_lab.frameworks.torch", "keras": "alexnet_lab.frameworks.keras"}  # name -> Backend package
DEFAULT_FRAMEWORK = "torch"  # --framework's default and the Python API's
# name -> file endings of its own weight format, read by weights.files to choose a reader or writer
# before the framework is imported; each Backend's WEIGHT_SUFFIXES is its entry here
WEIGHT_SUFFIXES = {"torch": (".pth", ".pt"), "keras": (".weights.h5", ".keras")}
ALSO_READS = {"keras": (".h5",)}  # endings a framework reads but never writes (Keras 2 HDF5 weight files)


def check_framework(framework: str) -> str:
    """`framework` when it is one of FRAMEWORKS, without importing it.

    Raises:
        UserInputError: an unknown name (with a close match).
    """
    if framework not in FRAMEWORKS:
        raise unknown_name_error("framework", framework, FRAMEWORKS)
    return framework


def get_backend(framework: str) -> Backend:
    """Import and return the implementation for 'torch' or 'keras'.

    Raises:
        UserInputError: an unknown name (with a close match).
    """
    return cast(Backend, importlib.import_module(FRAMEWORKS[check_framework(framework)]))


def build_for(bundle: WeightBundle, framework: str, device: str = "auto") -> Any:
    """A `framework` model of the bundle's variant, class count and input size, with the bundle's
    weights, on `device`: what predict, evaluate, verify and every export run."""
    backend = get_backend(framework)
    size = bundle.meta.input_size or bundle.meta.preprocess.crop
    model = backend.build_model(bundle.meta.variant, bundle.num_classes, input_size=size)
    return backend.to_device(backend.from_canonical(model, bundle.tensors), device)


__all__ = ["ALSO_READS", "DEFAULT_FRAMEWORK", "FRAMEWORKS", "WEIGHT_SUFFIXES", "Backend", "build_for", "check_framework",
           "get_backend"]
