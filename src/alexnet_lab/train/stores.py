"""Deprecated: the old name of :mod:`alexnet_lab.train.image_stores`
(the stores of decoded images a run reads).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.train.image_stores` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.train.stores is deprecated; import alexnet_lab.train.image_stores instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.train.image_stores")
