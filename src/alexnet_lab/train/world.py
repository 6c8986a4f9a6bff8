"""Deprecated: the old name of :mod:`alexnet_lab.train.launch_env`
(which process of a distributed run this is, from the launcher's environment).

Importing this module warns and gives that module itself, so old imports and patches keep
working for a release; import :mod:`alexnet_lab.train.launch_env` instead.
"""

import importlib
import sys
import warnings

warnings.warn("alexnet_lab.train.world is deprecated; import alexnet_lab.train.launch_env instead.",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("alexnet_lab.train.launch_env")
