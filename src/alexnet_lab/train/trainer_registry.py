"""Pick a framework's training parts by name, as :func:`alexnet_lab.frameworks.get_backend`
picks its Backend. Each package here (:mod:`.torch`, :mod:`.keras`) exposes

``train_run(config, ctx, stores, bundle, augment_spec, normalisation) -> dict``: build the model
(loading the pretrained WeightBundle `bundle` when not None), plan the phases, make the
framework's :class:`~alexnet_lab.train.loop.FrameworkTrainer` and hand it to
:func:`alexnet_lab.train.loop.fit`. `stores` is {'train': (images, labels), 'val': (images,
labels)} of uint8 stores, `augment_spec` the AugmentSpec of training views, `normalisation`
(scale, offset, bgr) from data.datasets.normalisation. It returns what was resolved at run time
(device, precision, re-initialised layers, phases, ...) for the run's config.json.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.train.config import FEATURES, supports  # noqa: F401 - re-exported, their home is config

TRAINERS = {"torch": "alexnet_lab.train.torch", "keras": "alexnet_lab.train.keras"}


def get_trainer(framework: str) -> ModuleType:
    """Import and return the training package for 'torch' or 'keras'."""
    if framework not in TRAINERS:
        raise unknown_name_error("framework", framework, TRAINERS)
    return importlib.import_module(TRAINERS[framework])
