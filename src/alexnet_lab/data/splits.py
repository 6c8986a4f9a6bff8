"""Deterministic stratified splits, and saving/loading them so a run can resume with its split.

A split depends only on (the set of paths per class, the ratios, the seed): paths are sorted
before shuffling and each class is shuffled by a generator seeded with (seed, crc32 of the class
name), so reordering files or classes, or adding a class, leaves every other class's split as is.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.data.index import DatasetIndex, Sample, preview_names
from alexnet_lab.data.remote import is_remote

SPLIT_FORMAT = "alexnet-lab-split"
SPLIT_FORMAT_VERSION = 1
DEFAULT_RATIOS = {"train": 0.9, "val": 0.1}  # the 10% validation split of the usual CIFAR recipe


def _check_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    checked = {str(name): float(value) for name, value in ratios.items()}
    if not checked or any(not name for name in checked):
        raise UserInputError(f"expected split ratios like {{'train': 0.9, 'val': 0.1}}; received {dict(ratios)!r}.")
    if any(not (0.0 < value <= 1.0) for value in checked.values()):
        raise UserInputError(f"expected every split ratio in (0, 1]; received {checked!r}. Drop zero-sized splits.")
    if not math.isclose(sum(checked.values()), 1.0, abs_tol=1e-6):
        raise UserInputError(
            f"expected split ratios that sum to 1; received {checked!r} (sum {sum(checked.values()):g}). Rescale them."
        )
    return checked


def split_counts(total: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """How many of `total` samples each split gets.

    Largest-remainder rounding keeps every count within one of total * ratio; then, when there
    are at least as many samples as splits, an empty split takes one sample from the split
    with the most samples above its exact share, so every class appears in every split.
    """
    names = sorted(ratios)  # iteration order of the dict must not change the result
    exact = {name: total * ratios[name] for name in names}
    counts = {name: math.floor(exact[name]) for name in names}
    by_remainder = sorted(names, key=lambda n: (-(exact[n] - counts[n]), n))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    if total >= len(names):
        for name in names:
            if counts[name] == 0:
                donor = max(names, key=lambda n: (counts[n] - exact[n] if counts[n] > 1 else -math.inf, n))
                counts[donor] -= 1
                counts[name] += 1
    return counts


def _class_rng(seed: int, class_name: str) -> np.random.Generator:
    # crc32 of the name, not the label number, so a class's shuffle survives class reordering.
    return np.random.default_rng([int(seed), zlib.crc32(class_name.encode("utf-8"))])


def stratified_split(
    index: DatasetIndex, ratios: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, DatasetIndex]:
    """Split every class of `index` by `ratios`, deterministically.

    Args:
        index: the data to split.
        ratios: split name -> fraction, summing to 1; default {'train': 0.9, 'val': 0.1}.
        seed: the same seed gives the same split whatever the order of the input samples.

    Returns:
        Split name -> index (in the order of `ratios`), each with all class names and the root
        of `index`, samples sorted by (label, path). Per class, each split's size is within
        one sample of its ratio, and every split has the class when it has enough samples.

    Raises:
        UserInputError: for ratios that are empty, out of (0, 1] or do not sum to 1.
    """
    checked = _check_ratios(DEFAULT_RATIOS if ratios is None else ratios)
    by_class: dict[int, list[str]] = {}
    for sample in index.samples:
        by_class.setdefault(sample.label, []).append(sample.path)
    chosen: dict[str, list[Sample]] = {name: [] for name in checked}
    for label in sorted(by_class):
        paths = sorted(by_class[label])
        order = _class_rng(seed, index.class_names[label]).permutation(len(paths))
        start = 0
        for name, count in sorted(split_counts(len(paths), checked).items()):
            chosen[name].extend(Sample(paths[i], label) for i in order[start : start + count])
            start += count
    return {
        name: DatasetIndex(tuple(sorted(chosen[name], key=lambda s: (s.label, s.path))), index.class_names, index.root,
                           index.report)
        for name in checked
    }


def _common_root(splits: Mapping[str, DatasetIndex]) -> str | None:
    roots = {index.root for index in splits.values() if index.root is not None}
    if not roots:
        return None
    return roots.pop() if len(roots) == 1 else os.path.commonpath(sorted(roots))


def _relative(path: str, root: str | None) -> str:
    """`path` relative to `root` in '/' form when it lies under it; absolute otherwise (a URL as it is)."""
    if is_remote(path):
        return path
    if root is not None:
        relative = os.path.relpath(os.path.abspath(path), root)
        if relative != ".." and not relative.startswith(".." + os.sep):
            return Path(relative).as_posix()
    return os.path.abspath(path)


def save_split(splits: Mapping[str, DatasetIndex], path: str | os.PathLike[str]) -> Path:
    """Write `splits` as JSON, atomically, with paths relative to the splits' common root.

    Returns:
        The path written.

    Raises:
        UserInputError: when there are no splits or they do not share the same class names.
    """
    if not splits:
        raise UserInputError("expected at least one split to save; received none.")
    class_names = next(iter(splits.values())).class_names
    differing = [name for name, index in splits.items() if index.class_names != class_names]
    if differing:
        raise UserInputError(
            f"expected all splits to share one class list; received different classes in {preview_names(differing)}. "
            "Align them with align_to() first."
        )
    root = _common_root(splits)
    document = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_FORMAT_VERSION,
        "root": root,
        "class_names": list(class_names),
        "splits": {
            name: [[_relative(s.path, root), s.label] for s in index.samples] for name, index in splits.items()
        },
    }
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return target


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"expected a saved split file; received '{path}', which does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(
            f"expected a JSON split file written by save_split; cannot parse '{path}' ({exc})."
        ) from None
    if not isinstance(document, dict) or document.get("format") != SPLIT_FORMAT:
        raise UserInputError(
            f"expected a split file with format '{SPLIT_FORMAT}'; '{path}' is not one. Pass the file save_split wrote."
        )
    if document.get("version") != SPLIT_FORMAT_VERSION:
        raise UserInputError(
            f"expected split file version {SPLIT_FORMAT_VERSION}; received {document.get('version')!r} in '{path}'. "
            "Upgrade alexnet-lab or re-create the split."
        )
    return document


def _indexes_from(document: dict[str, Any], base: str | None, file_path: Path) -> dict[str, DatasetIndex]:
    """Build the split indexes of a parsed document, joining relative paths onto `base`."""

    def full(relative: str) -> str:
        return relative if os.path.isabs(relative) or base is None or is_remote(relative) else os.path.join(base, relative)

    class_names = tuple(document.get("class_names") or ())
    try:
        return {
            name: DatasetIndex(tuple(Sample(full(p), int(label)) for p, label in rows), class_names, base)
            for name, rows in document["splits"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(
            f"expected split entries of [path, label] in '{file_path}'; the file is damaged ({exc})."
        ) from None


def load_split(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, check_exists: bool = True
) -> dict[str, DatasetIndex]:
    """Read splits written by :func:`save_split`.

    Args:
        path: the JSON file.
        root: where the dataset is now, when it moved since the split was saved; defaults to
            the root stored in the file.
        check_exists: report files that are no longer there (first few named) as an error.

    Returns:
        Split name -> index, in the saved order, with the saved class names.

    Raises:
        UserInputError: unreadable or foreign file, bad entries, or missing image files.
    """
    file_path = Path(path)
    document = _read_document(file_path)
    base = os.path.abspath(root) if root is not None else document.get("root")
    splits = _indexes_from(document, base, file_path)
    if check_exists:
        missing = [s.path for index in splits.values() for s in index.samples
                   if not is_remote(s.path) and not os.path.isfile(s.path)]
        if missing:
            raise UserInputError(
                f"split '{file_path}' lists {len(missing)} file(s) that do not exist, "
                f"e.g. {preview_names(missing, 3)}; "
                "pass root= the dataset's current folder if it moved."
            )
    return splits
