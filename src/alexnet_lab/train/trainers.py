"""Deprecated: the old name of :mod:`alexnet_lab.train.trainer_registry`
(the registry of each framework's training package, beside train/<framework>/trainer.py).

Importing this module warns and gives that module itself (core.moved), so old imports and
patches keep working for a release; import :mod:`alexnet_lab.train.trainer_registry` instead.
"""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.train.trainer_registry"))
