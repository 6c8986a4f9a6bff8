"""Framework-neutral data layer: image reading, dataset indexes, splits, synthetic data, augmentation.

Imports numpy, PIL and the standard library only, so the PyTorch and the Keras training loops
share one definition of what the data is; a unit test checks no framework gets imported.
"""

from alexnet_lab.data.augment import (
    CIFAR_AUGMENT,
    CIFAR_CUTOUT_AUGMENT,
    IMAGENET_AUGMENT,
    NO_AUGMENT,
    AugmentSpec,
    augment,
    augment_batch,
    resized_crop_box,
)
from alexnet_lab.data.images import IMAGE_EXTENSIONS, ImageReadError, is_image_path, read_image_rgb, to_rgb_array
from alexnet_lab.data.index import DatasetIndex, Sample, align_to, scan_corrupt
from alexnet_lab.data.sources import (
    ALL_SPLIT,
    SPLIT_ALIASES,
    read_class_folder,
    read_folder_splits,
    read_list_file,
)
from alexnet_lab.data.splits import DEFAULT_RATIOS, load_split, save_split, split_counts, stratified_split
from alexnet_lab.data.synthetic import (
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    make_synthetic,
    synthetic_class_names,
    synthetic_sample,
    write_synthetic_folder,
)

__all__ = [
    "ALL_SPLIT",
    "AugmentSpec",
    "CIFAR_AUGMENT",
    "CIFAR_CUTOUT_AUGMENT",
    "DEFAULT_RATIOS",
    "DatasetIndex",
    "IMAGENET_AUGMENT",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "NO_AUGMENT",
    "SPLIT_ALIASES",
    "SYNTHETIC_CLASSES",
    "Sample",
    "SyntheticSpec",
    "align_to",
    "augment",
    "augment_batch",
    "is_image_path",
    "load_split",
    "make_synthetic",
    "read_class_folder",
    "read_folder_splits",
    "read_image_rgb",
    "read_list_file",
    "resized_crop_box",
    "save_split",
    "scan_corrupt",
    "split_counts",
    "stratified_split",
    "synthetic_class_names",
    "synthetic_sample",
    "to_rgb_array",
    "write_synthetic_folder",
]
