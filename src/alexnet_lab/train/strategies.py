"""Deprecated: the old name of :mod:`alexnet_lab.train.phases`
(training strategies are planned as phases (and tf.distribute has strategies of its own)).

Importing this module warns and gives that module itself (core.moved), so old imports and
patches keep working for a release; import :mod:`alexnet_lab.train.phases` instead.
"""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.train.phases"))
