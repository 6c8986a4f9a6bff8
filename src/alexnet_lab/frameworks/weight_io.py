"""The parts of a framework that ``weights/`` may reach: its weight-file reader and writer
(``io``) and its canonical <-> model conversion (``convert``), picked by framework name.

These modules import nothing from ``weights/`` (the layout test checks it), so reading a `.pth`
or placing pretrained tensors never calls back into the code that resolves weight names: the
dispatch circle weights.files -> get_backend -> the framework -> weights.files is gone. Building
a model with weights is each framework's ``build_model`` (the one route), which sits above.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import unknown_name_error
from alexnet_lab.frameworks.protocol import MetaFactory

# framework name -> (weight-file module, conversion module); the names are frameworks.registry's
IO_MODULES = {"torch": "alexnet_lab.frameworks.torch.io", "keras": "alexnet_lab.frameworks.keras.io"}
CONVERT_MODULES = {"torch": "alexnet_lab.frameworks.torch.convert", "keras": "alexnet_lab.frameworks.keras.convert"}


def _module(table: dict[str, str], framework: str) -> ModuleType:
    if framework not in table:
        raise unknown_name_error("framework", framework, table)
    return importlib.import_module(table[framework])


def read_weights(framework: str, path: Path, meta_for_file: MetaFactory) -> WeightBundle:
    """The framework's own weight file as a bundle (Backend.read_weights)."""
    return _module(IO_MODULES, framework).read_weights(path, meta_for_file)


def write_weights(framework: str, bundle: WeightBundle, path: Path) -> Path:
    """Write the bundle in the framework's own format (Backend.write_weights)."""
    return _module(IO_MODULES, framework).write_weights(bundle, path)


def converter(framework: str) -> Any:
    """The framework's conversion module: from_canonical, to_canonical, model_variant,
    model_num_classes, weight_layers (the Backend members of the same names)."""
    return _module(CONVERT_MODULES, framework)
