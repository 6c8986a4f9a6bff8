"""The frameworks: one typed interface (:class:`.protocol.Backend`) and one implementation per
framework (:mod:`.torch`, :mod:`.keras`), picked by name with :func:`get_backend`.

Importing this package loads no framework; an implementation is imported when first asked for.
Importing it loads only the registry and the error helpers, so the public face (``alexnet_lab``)
may read :data:`.registry.DEFAULT_FRAMEWORK` for its signatures; the protocol (and the weight
bundle it names) is imported when ``Backend`` is asked for.
To add a framework, add a package here whose ``__init__`` defines every Backend member, its entry
to :mod:`.registry` (the facts) and its modules to the dispatch tables: FRAMEWORKS here,
``weight_io`` (its io and convert modules) and ``train.trainer_registry.TRAINERS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.frameworks.registry import ALSO_READS, DEFAULT_FRAMEWORK, ENTRIES, WEIGHT_SUFFIXES

if TYPE_CHECKING:  # annotations only: importing this package stays as light as the registry
    from alexnet_lab.core.bundle import WeightBundle
    from alexnet_lab.frameworks.protocol import Backend

# The dispatch table: name -> Backend package (the facts about each are registry.ENTRIES)
FRAMEWORKS = {"torch": "alexnet_lab.frameworks.torch", "keras": "alexnet_lab.frameworks.keras"}


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
    return cast("Backend", importlib.import_module(FRAMEWORKS[check_framework(framework)]))


def build_for(bundle: WeightBundle, framework: str, device: str = "auto") -> Any:
    """A `framework` model of the bundle's variant, class count and input size, with the bundle's
    weights, on `device`: what predict, evaluate, verify and every export run."""
    backend = get_backend(framework)
    return backend.to_device(backend.build_model(weights=bundle), device)  # the one route: the bundle says the rest


def __getattr__(name: str) -> Any:
    if name == "Backend":  # the protocol, imported on first use (it imports core.bundle)
        from alexnet_lab.frameworks.protocol import Backend

        return Backend
    raise AttributeError(f"module 'alexnet_lab.frameworks' has no attribute '{name}'")


__all__ = ["ALSO_READS", "DEFAULT_FRAMEWORK", "ENTRIES", "FRAMEWORKS", "WEIGHT_SUFFIXES", "Backend", "build_for",
           "check_framework", "get_backend"]
