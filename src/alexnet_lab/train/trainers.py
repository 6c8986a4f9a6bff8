"""Pick a framework's training parts by name, as :func:`alexnet_lab.frameworks.get_backend`
picks its model adapter: each package here (:mod:`.torch`, :mod:`.keras`) exposes
``train_run(config, ctx, stores, bundle, augment_spec, normalisation) -> dict``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from alexnet_lab.core.errors import unknown_name_error

TRAINERS = {"torch": "alexnet_lab.train.torch", "keras": "alexnet_lab.train.keras"}
# what a framework's training offers beyond the common flags: torchrun (one process per device,
# DistributedDataParallel), torch.compile, tf.distribute strategies in one process per machine
FEATURES = {"torch": frozenset({"torchrun", "compile"}), "keras": frozenset({"distribute"})}


def supports(framework: str, feature: str) -> bool:
    """Whether `framework`'s training offers `feature` (a FEATURES entry)."""
    return feature in FEATURES.get(framework, frozenset())


def get_trainer(framework: str) -> ModuleType:
    """Import and return the training package for 'torch' or 'keras'."""
    if framework not in TRAINERS:
        raise unknown_name_error("framework", framework, TRAINERS)
    return importlib.import_module(TRAINERS[framework])
