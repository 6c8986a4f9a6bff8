"""Deprecated: the old name of :mod:`alexnet_lab.train.phases`
(training strategies are planned as phases (and tf.distribute has strategies of its own)).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.train.phases` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.train.strategies is deprecated; import alexnet_lab.train.phases instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.train.phases")
