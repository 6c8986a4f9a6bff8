"""Deprecated: the old name of :mod:`alexnet_lab.train.trainer_registry`
(the registry of each framework's training package, beside train/<framework>/trainer.py).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.train.trainer_registry` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.train.trainers is deprecated; import alexnet_lab.train.trainer_registry instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.train.trainer_registry")
