"""Deprecated: the old name of :mod:`alexnet_lab.frameworks.keras.activations`
(layer outputs and class gradients).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.frameworks.keras.activations` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.frameworks.keras.taps is deprecated; import alexnet_lab.frameworks.keras.activations instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.frameworks.keras.activations")
