"""Training data, framework-neutral: resolve --data into splits, decode images once, and the
per-sample train / eval views both training loops use.

Images are decoded once into a uint8 store at the preprocessing's resize size (square: shorter
side resized, then centre-cropped to a square), so an epoch touches no files. Synthetic samples
are addressed by virtual paths `synthetic:SEED:INDEX`, so splits, split files and evaluation
treat them like files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import (
    PreprocessSpec,
    center_crop,
    check_image_size,
    crop_offsets,
    normalisation_terms,
    resize_bilinear,
    resize_geometry,
    resized_size,
    to_uint8,
)
from alexnet_lab.data import (
    CIFAR_AUGMENT,
    CIFAR_CUTOUT_AUGMENT,
    IMAGENET_AUGMENT,
    NO_AUGMENT,
    AugmentSpec,
    DatasetIndex,
    ImageReadError,
    Sample,
    SyntheticSpec,
    augment,
    read_folder_splits,
    read_image_rgb,
    read_list_file,
    stratified_split,
    synthetic_class_names,
    synthetic_sample,
)
from alexnet_lab.data.remote import is_remote
from alexnet_lab.data.remote_shards import in_stream_order, is_remote_member, read_remote_member
from alexnet_lab.data.shards import is_member_path, is_shard_folder, read_member, read_shard_splits

log = logging.getLogger(__name__)

SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_CLASSES = 10
AUGMENTS = {"none": NO_AUGMENT, "cifar": CIFAR_AUGMENT, "cifar-cutout": CIFAR_CUTOUT_AUGMENT, "imagenet": IMAGENET_AUGMENT,
            "flip": AugmentSpec(hflip=True)}


@dataclass(frozen=True)
class DataSplits:
    """train / val (/ test) indexes over the same class names."""

    splits: dict[str, DatasetIndex]
    class_names: tuple[str, ...]
    description: str


def synthetic_index(per_class: int, seed: int, num_classes: int = SYNTHETIC_CLASSES) -> DatasetIndex:
    spec = SyntheticSpec(num_classes=num_classes, size=32, per_class=per_class, seed=seed)
    samples = [Sample(f"{SYNTHETIC_PREFIX}{seed}:{i}", i % num_classes) for i in range(spec.num_images)]
    return DatasetIndex(samples, synthetic_class_names(num_classes))


def read_source(data: str, data_dir: str | None = None, seed: int = 0, synthetic_per_class: int = 300) -> dict[str, DatasetIndex]:
    """The splits a --data value names: 'synthetic', 'cifar10' (python batches), a folder, a list file,
    a run folder's split.json, or shard URLs / a pipe: command (data.remote_shards).
    A source without its own train/val split comes back as {'all': ...} (plus 'test' if it has one)."""
    if data == "synthetic":
        return {"all": synthetic_index(synthetic_per_class, seed)}
    if data == "cifar10":
        from alexnet_lab.data import cifar10

        return cifar10.indexes(cifar10.locate(data_dir))
    if is_remote(data):  # http(s)://, s3://, gs:// shards or a pipe: command, streamed (data.remote_shards)
        from alexnet_lab.data.remote_shards import read_remote_shards

        return read_remote_shards(data)
    path = Path(data).expanduser()
    if not path.exists():
        raise UserInputError(f"--data '{data}' not found; pass a class folder, a list file ('path label' lines), "
                             "shard URLs (http(s)://, s3://, gs://, pipe:COMMAND), 'synthetic' or 'cifar10'.")
    if path.is_file() and path.suffix == ".json":  # a run folder's split.json: the splits it trained on
        from alexnet_lab.data.splits import load_split

        return load_split(path)
    if path.is_dir() and is_shard_folder(path):  # *.tar shards of KEY.jpg + KEY.cls (or train/ val/ test/ of them)
        return read_shard_splits(path)
    # a folder: train/ val/ test/ inside, or one class per sub-folder
    return read_folder_splits(path) if path.is_dir() else {"all": read_list_file(path)}


def first_per_class(index: DatasetIndex, per_class: int) -> DatasetIndex:
    """The first `per_class` samples of each class, in index order (all of them when per_class <= 0)."""
    if per_class <= 0:
        return index
    seen: dict[int, int] = {}
    keep = []
    for position, sample in enumerate(index.samples):
        seen[sample.label] = seen.get(sample.label, 0) + 1
        if seen[sample.label] <= per_class:
            keep.append(position)
    return index.subset(keep)


def resolve_data(data: str, *, data_dir: str | None = None, val_data: str | None = None, val_ratio: float = 0.1,
                 test_ratio: float = 0.0, seed: int = 0, synthetic_per_class: int = 300,
                 limit_per_class: int = 0) -> DataSplits:
    """Turn --data (and --val-data) into train/val(/test) splits with a deterministic split."""
    found = read_source(data, data_dir, seed, synthetic_per_class)
    if val_data is not None:
        found = {"train": found.get("train", found.get("all")), "val": read_source(val_data).get("all")}
    if "all" in found:
        ratios = {"train": 1.0 - val_ratio - test_ratio, "val": val_ratio}
        if test_ratio > 0 and "test" not in found:
            ratios["test"] = test_ratio
        rest = {name: index for name, index in found.items() if name != "all"}
        found = {**stratified_split(first_per_class(found["all"], limit_per_class * 10 if limit_per_class else 0), ratios,
                                    seed=seed), **rest}
    if "train" not in found or "val" not in found:
        raise UserInputError(f"--data '{data}' has splits {sorted(found)}; training needs 'train' and 'val' (or one "
                             "folder of classes to split with --val-ratio).")
    splits = {name: in_stream_order(first_per_class(index, limit_per_class) if name == "train" else index)
              for name, index in found.items()}
    names = splits["train"].class_names
    summary = ", ".join(f"{name} {len(index)}" for name, index in splits.items())
    return DataSplits(splits, names, f"{data}: {len(names)} classes; {summary}")


def load_pixels(path: str, min_side: int | None = None) -> np.ndarray:
    """uint8 RGB pixels of a file, a tar shard member or a virtual synthetic path. `min_side`: a
    JPEG may be decoded at a reduced size whose shorter side is still >= min_side (PIL's draft)."""
    if is_member_path(path):
        return read_member(path, min_side)
    if is_remote_member(path):
        return read_remote_member(path, min_side)
    if path.startswith("cifar10:"):
        from alexnet_lab.data import cifar10

        return cifar10.read_pixels(path)
    if path.startswith(SYNTHETIC_PREFIX):
        seed, index = (int(part) for part in path[len(SYNTHETIC_PREFIX):].split(":"))
        return synthetic_sample(SyntheticSpec(num_classes=SYNTHETIC_CLASSES, size=32, seed=seed), index)[0]
    return read_image_rgb(path, min_side=min_side)


def stored_size_of(height: int, width: int, spec: PreprocessSpec) -> int:
    """Side of the square an image is stored at: the spec's resize, or the shorter side if it does not resize."""
    return spec.resize if spec.resize_mode != "none" else min(height, width)


def resized_view(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The whole uint8 image resized as the spec resizes it (core.preprocessing.resized_size,
    the rounding predict uses), not cropped: what the decoded cache keeps (its shorter side at the
    resize, its aspect kept). resized_size gives an image of that size back unchanged, so
    stored_view and resized_crop of this image only crop.

    Raises:
        ImageReadError: the image guard refuses the image (core.preprocessing.image_size_problem).
    """
    height, width = image.shape[:2]
    check_image_size(height, width, spec, max(height * width, 1))  # decoded already: only its shape counts
    resized_h, resized_w = resized_size(height, width, spec)
    if (resized_h, resized_w) != (height, width):
        image = to_uint8(resize_bilinear(image, resized_h, resized_w, antialias=spec.antialias))
    return image


def stored_view(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The square uint8 image kept in memory: resized like the spec (resized_view) and cropped to a
    square placed so that eval_view's centre crop is exactly preprocess's crop, pixel for pixel.

    Raises:
        ImageReadError: the image guard refuses the image (core.preprocessing.image_size_problem).
    """
    image = resized_view(image, spec)
    size = stored_size_of(*image.shape[:2], spec)
    _, _, top, left = resize_geometry(*image.shape[:2], spec)  # the resized size again: the same crop offsets
    # eval_view crops (size - crop) // 2 into the square; start the square that much before the crop
    inset, _ = crop_offsets(size, size, spec.crop)
    top, left = top - inset, left - inset  # >= 0: the resized sides are >= size
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def decode_all(index: DatasetIndex, spec: PreprocessSpec, strict: bool = False,
               progress: Callable[[int], None] | None = None,
               min_side: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every image once: (uint8 N x S x S x 3, labels, unreadable paths skipped).
    `min_side`: allow reduced-size JPEG decoding (see load_pixels)."""
    images, labels, bad = [], [], []
    for sample in index.samples:
        try:
            images.append(stored_view(load_pixels(sample.path, min_side), spec))
            labels.append(sample.label)
        except ImageReadError as exc:  # unreadable, or refused by the image guard
            if strict:
                raise
            bad.append(sample.path)
            log.warning("skipping unreadable image %s: %s", sample.path, exc)
        if progress is not None:
            progress(1)
    if not images:
        raise UserInputError(f"no readable images among {len(index)} files; check the data folder.")
    return np.stack(images), np.asarray(labels, dtype=np.int64), bad


def train_view(image: np.ndarray, augment_spec: AugmentSpec, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Augmented crop x crop view of a stored image (random crop when it is larger)."""
    out = augment(image, augment_spec, rng, size=(crop, crop) if augment_spec.random_resized_crop else None)
    if out.shape[0] > crop:
        top, left = rng.integers(0, out.shape[0] - crop + 1), rng.integers(0, out.shape[1] - crop + 1)
        out = out[top : top + crop, left : left + crop]
    return np.ascontiguousarray(out)


def eval_view(image: np.ndarray, crop: int) -> np.ndarray:
    return np.ascontiguousarray(center_crop(image, crop)) if image.shape[0] > crop else image


def normalisation(spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray, bool]:
    """(scale per channel, offset per channel, bgr) so that x = uint8 * scale + offset, in the
    spec's channel order: folds scale, mean and std into one multiply-add for the hot loop."""
    scale, offset = normalisation_terms(spec)  # the same terms as core.preprocessing.normalize
    return scale, offset, spec.channel_order == "BGR"


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))
