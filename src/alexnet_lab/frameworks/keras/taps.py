"""Deprecated old name of :mod:`alexnet_lab.frameworks.keras.activations`: warns, then is that module (core.moved)."""

import importlib

from alexnet_lab.core.moved import moved

moved(__name__, importlib.import_module("alexnet_lab.frameworks.keras.activations"))
