"""Deprecated: the old name of :mod:`alexnet_lab.evaluate.dataset_eval` (weights evaluated on a data set).

Importing this module warns and gives that module itself (core.moved), so old imports and
patches keep working for a release; import :mod:`alexnet_lab.evaluate.dataset_eval` instead.
"""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.evaluate.dataset_eval"))
