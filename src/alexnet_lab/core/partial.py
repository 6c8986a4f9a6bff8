"""Deprecated: the old name of :mod:`alexnet_lab.core.partial_layout`
(the validation of a partial canonical layout).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.core.partial_layout` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.core.partial is deprecated; import alexnet_lab.core.partial_layout instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.core.partial_layout")
