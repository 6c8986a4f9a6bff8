"""Framework-neutral core: architecture specs, canonical weight layout, preprocessing.

Imports numpy and the standard library only; a unit test checks that importing this package
loads no deep-learning framework.
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
