"""Framework-neutral truths, numpy and the standard library only: architecture specs (spec.py),
the canonical weight layout and its validator (layout.py), the transposes between layouts
(transforms.py), preprocessing (preprocessing.py), weights with their metadata (bundle.py),
integrity fingerprints, precision lists and the `auto` rule (precision.py), what an export is
(exports.py), the CPU kind (hardware.py), atomic file writing (fileio.py) and the errors.

A unit test checks that importing this package loads no deep-learning framework; every other
package may import from here, and this package imports from no other.
"""

from alexnet_lab.core.errors import AlexnetLabError, LayoutError, UserInputError, WeightFormatError
from alexnet_lab.core.layout import (
    CANONICAL_LAYERS,
    canonical_keys,
    check_layout,
    infer_num_classes,
    infer_variant,
)
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET, PreprocessSpec
from alexnet_lab.core.spec import VARIANTS, ArchSpec, ConvSpec, get_arch

__all__ = [
    "AlexnetLabError",
    "ArchSpec",
    "BVLC_CAFFE",
    "CANONICAL_LAYERS",
    "ConvSpec",
    "LayoutError",
    "PreprocessSpec",
    "TORCHVISION_IMAGENET",
    "UserInputError",
    "VARIANTS",
    "WeightFormatError",
    "canonical_keys",
    "check_layout",
    "get_arch",
    "infer_num_classes",
    "infer_variant",
]
