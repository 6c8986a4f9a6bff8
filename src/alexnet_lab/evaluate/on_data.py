"""Deprecated: the old name of :mod:`alexnet_lab.evaluate.dataset_eval` (weights evaluated on a data set).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.evaluate.dataset_eval` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.evaluate.on_data is deprecated; import alexnet_lab.evaluate.dataset_eval instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.evaluate.dataset_eval")
