"""What a dataset is, independent of any framework: labelled file paths plus class names.

A :class:`DatasetIndex` is a frozen list of (path, label) samples, the class names the labels
index into, and the folder that relative paths are written against when a split is saved.
Combining two indexes always goes by class *name* (:func:`align_to`), never by label number, so
evaluation data whose folders are a subset of, or ordered differently from, the model's classes
still gets the right labels.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from alexnet_lab.core.errors import UserInputError, did_you_mean
from alexnet_lab.data.images import ImageReadError, read_image_rgb
from alexnet_lab.data.walk import SkipReport

logger = logging.getLogger(__name__)


def preview_names(names: Sequence[str], limit: int = 10) -> str:
    """'a, b, c' for short lists, 'a, b, ... (1000 in all)' for long ones, for error messages."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


@dataclass(frozen=True)
class Sample:
    """One labelled image file.

    Attributes:
        path: path of the image file (absolute for indexes built by the readers).
        label: index into the owning DatasetIndex's class_names.
    """

    path: str
    label: int

    def __post_init__(self) -> None:
        # Coerce numpy ints and PathLike paths so samples compare equal and serialise to JSON.
        object.__setattr__(self, "path", os.fspath(self.path))
        object.__setattr__(self, "label", int(self.label))


@dataclass(frozen=True)
class DatasetIndex:
    """A framework-neutral dataset: samples, the class names labels refer to, and a root.

    Attributes:
        samples: the labelled files, in a stable order.
        class_names: label i means class_names[i]; names are unique.
        root: folder that saved splits store paths relative to; None when there is none.
        report: what reading the data left out (links, repeats, damaged shard members), kept by
            subsets, splits and relabelling; None for indexes not read from a folder.
    """

    samples: tuple[Sample, ...]
    class_names: tuple[str, ...]
    root: str | None = None
    report: SkipReport | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "class_names", tuple(str(name) for name in self.class_names))
        if self.root is not None:
            object.__setattr__(self, "root", os.fspath(self.root))
        repeated = sorted(name for name, count in Counter(self.class_names).items() if count > 1)
        if repeated:
            raise UserInputError(
                f"class names must be unique; received repeats of {preview_names(repeated)}. "
                "Rename or merge those classes."
            )
        count = len(self.class_names)
        for sample in self.samples:
            if not 0 <= sample.label < count:
                raise UserInputError(
                    f"label {sample.label} of '{sample.path}' is out of range; expected 0..{count - 1} "
                    f"for the {count} classes ({preview_names(self.class_names)}). Fix the label."
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(sample.path for sample in self.samples)

    @property
    def labels(self) -> np.ndarray:
        """Labels as an int64 array, the dtype both frameworks' losses accept."""
        return np.fromiter((s.label for s in self.samples), dtype=np.int64, count=len(self.samples))

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class, in class order, zeros included."""
        counts = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def subset(self, positions: Iterable[int]) -> DatasetIndex:
        """The samples at the given positions, same class names and root."""
        return replace(self, samples=tuple(self.samples[i] for i in positions))

    def exclude(self, paths: Iterable[str]) -> DatasetIndex:
        """The index without the given paths, e.g. after :func:`scan_corrupt` found them bad."""
        dropped = {os.fspath(p) for p in paths}
        return replace(self, samples=tuple(s for s in self.samples if s.path not in dropped))

    def check_complete(self, strict: bool) -> None:
        """Under `strict`, refuse an index whose reading lost samples (see SkipReport.check)."""
        if self.report is not None:
            self.report.check(strict, f"the data under '{self.root}'" if self.root else "the data")

    def summary(self) -> str:
        """One line for logs: size, classes and root."""
        where = f" under '{self.root}'" if self.root else ""
        return f"{len(self)} images in {self.num_classes} classes{where}"


def align_to(index: DatasetIndex, class_names: Sequence[str], known_as: str = "the model") -> DatasetIndex:
    """Relabel `index` so its labels index into `class_names`, matching classes by name.

    Classes of `index` that have no samples are dropped silently; classes with samples that
    `class_names` lacks are an error, because their images could never be labelled right.

    Args:
        index: the data to relabel (e.g. an evaluation folder).
        class_names: the target order (e.g. the model's classes).
        known_as: who owns `class_names`, for the error message.

    Returns:
        A new index with the same samples and root, labels remapped, class_names = target.

    Raises:
        UserInputError: listing every class with samples that the target does not have.
    """
    target = tuple(str(name) for name in class_names)
    position = {name: i for i, name in enumerate(target)}
    used = sorted({index.class_names[sample.label] for sample in index.samples})
    unknown = [name for name in used if name not in position]
    if unknown:
        raise UserInputError(
            f"the data has {len(unknown)} class(es) that {known_as} does not know: "
            f"{preview_names(unknown)}.{did_you_mean(unknown[0], target)} Expected classes among "
            f"{known_as}'s {len(target)}: {preview_names(target)}; remove those classes from the data."
        )
    remap = [position.get(name, -1) for name in index.class_names]
    samples = tuple(Sample(s.path, remap[s.label]) for s in index.samples)
    return DatasetIndex(samples, target, index.root, index.report)


def scan_corrupt(
    index: DatasetIndex,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Decode every image of `index` and return the paths that cannot be read.

    Readers do not open files (that would make indexing ImageNet slow); run this once before a
    long training run so a corrupt file is found now rather than in epoch 7.

    Args:
        index: the samples to check.
        strict: raise on the first bad file instead of collecting them.
        progress: called as progress(done, total) after each file.

    Returns:
        The unreadable paths, in index order (empty when all are fine).

    Raises:
        ImageReadError: on the first bad file, only when strict is True.
    """
    bad: list[str] = []
    total = len(index)
    for done, sample in enumerate(index.samples, start=1):
        try:
            read_image_rgb(sample.path)
        except ImageReadError as exc:
            if strict:
                raise
            logger.warning("%s", exc)
            bad.append(sample.path)
        if progress is not None:
            progress(done, total)
    return bad
