"""Deprecated: the old name of :mod:`alexnet_lab.train.launch_env`
(which process of a distributed run this is, from the launcher's environment).

Importing this module warns and gives that module itself (core.moved), so old imports and
patches keep working for a release; import :mod:`alexnet_lab.train.launch_env` instead.
"""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.train.launch_env"))
