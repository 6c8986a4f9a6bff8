"""Old module paths kept for a release: :func:`moved` makes a renamed module's old path warn and
be the new module itself, so old imports and monkeypatches reach the same object."""

from __future__ import annotations

import sys
import warnings
from types import ModuleType


def moved(old: str, new: ModuleType) -> None:
    """Warn that module `old` is deprecated and make `old` the module `new` in sys.modules.

    The old module calls it as its last line, ``moved(__name__, importlib.import_module(NEW))``:
    the import machinery hands back what sys.modules holds under the old name once it has run.
    """
    warnings.warn(f"{old} is deprecated; import {new.__name__} instead.", DeprecationWarning, stacklevel=3)
    sys.modules[old] = new


__all__ = ["moved"]
