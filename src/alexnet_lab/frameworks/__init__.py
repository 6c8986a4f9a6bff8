"""The frameworks: one typed interface (:class:`.protocol.Backend`) and one implementation per
framework (:mod:`.torch`, :mod:`.keras`), picked by name with :func:`get_backend`.

Importing this package loads no framework; an implementation is imported when first asked for.
To add a framework, add a package here whose ``__init__`` defines every Backend member, and its
name to FRAMEWORKS (its training parts go in ``alexnet_lab.train.<name>``, see train.trainers).
"""

from __future__ import annotations

import importlib
from typing import cast

from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.frameworks.protocol import Backend

FRAMEWORKS = {"torch": "alexnet_lab.frameworks.torch", "keras": "alexnet_lab.frameworks.keras"}


def get_backend(framework: str) -> Backend:
    """Import and return the implementation for 'torch' or 'keras'.

    Raises:
        UserInputError: an unknown name (with a close match).
    """
    if framework not in FRAMEWORKS:
        raise unknown_name_error("framework", framework, FRAMEWORKS)
    return cast(Backend, importlib.import_module(FRAMEWORKS[framework]))


__all__ = ["FRAMEWORKS", "Backend", "get_backend"]
