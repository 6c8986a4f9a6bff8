"""Pick a framework adapter by name; both expose the same functions.

build_model(variant, num_classes, dropout, input_size, *, weights, in_chans),
from_canonical(model, tensors), to_canonical(model), model_variant(model),
predict_logits(model, batch_nhwc).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from alexnet_lab.core.errors import unknown_name_error

FRAMEWORKS = {"torch": "alexnet_lab.torch_backend", "keras": "alexnet_lab.keras_backend"}


def get_backend(framework: str) -> ModuleType:
    """Import and return the adapter module for 'torch' or 'keras'."""
    if framework not in FRAMEWORKS:
        raise unknown_name_error("framework", framework, FRAMEWORKS)
    return importlib.import_module(FRAMEWORKS[framework])
