"""Deprecated: the old name of :mod:`alexnet_lab.core.partial_layout`
(the validation of a partial canonical layout).

Importing this module warns and gives that module itself (core.moved), so old imports and
patches keep working for a release; import :mod:`alexnet_lab.core.partial_layout` instead.
"""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.core.partial_layout"))
