"""Readers that turn folders and list files into DatasetIndex objects.

Two layouts are understood:

* class folders, ``root/<class>/**/<image>`` (torchvision ``ImageFolder``), optionally under
  split folders ``root/train/<class>/...``, ``root/val/...``, ``root/test/...``;
* list files, one ``<path> <label>`` per line, label a class index or a class name.

Folders are walked by :class:`~alexnet_lab.data.walk.FolderWalk` only: a link never lends one
class's images to another and no real image is indexed twice (what was left out is counted in
``index.report`` and warned about once). Readers only look at names, never at pixels, so
indexing a million files stays fast; use
:func:`scan_corrupt` to decode every file once. :class:`Sample`, :class:`DatasetIndex`,
:func:`align_to` and :func:`scan_corrupt` live in :mod:`alexnet_lab.data.index` and are
re-exported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from alexnet_lab.core.errors import UserInputError, did_you_mean
from alexnet_lab.data.images import IMAGE_EXTENSIONS, is_image_path
from alexnet_lab.data.index import DatasetIndex, Sample, align_to, preview_names, scan_corrupt
from alexnet_lab.data.walk import FolderWalk

__all__ = [
    "ALL_SPLIT",
    "DatasetIndex",
    "SPLIT_ALIASES",
    "Sample",
    "align_to",
    "read_class_folder",
    "read_folder_splits",
    "read_list_file",
    "scan_corrupt",
]

# Folder names recognised as splits, and the canonical split name each one means.
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}
ALL_SPLIT = "all"  # key of the single index read_folder_splits returns for a flat layout
_SPLIT_ORDER = ("train", "val", "test")
_EXTENSIONS = ", ".join(sorted(IMAGE_EXTENSIONS))
_INT_LABEL = re.compile(r"-?[0-9]+")
_MAX_REPORTED = 5  # bad lines quoted in one error message; the rest are counted
_MAX_INFERRED_CLASSES = 100_000  # guards '0'..'K-1' name inference against a typo like 10000000


def _existing_dir(root: str | os.PathLike[str]) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        problem = "is a file" if path.exists() else "does not exist"
        raise UserInputError(
            f"expected a dataset folder; received '{os.fspath(root)}', which {problem}. Check the path."
        )
    return path.absolute()


def read_class_folder(root: str | os.PathLike[str], walk: FolderWalk | None = None) -> DatasetIndex:
    """Index a ``root/<class>/**/<image>`` tree; classes are the folder names, sorted.

    Sorting by name matches torchvision's ImageFolder, so label numbers agree with models
    trained through it. Files without an image extension are ignored; pixels are not read.
    The tree is walked by :class:`~alexnet_lab.data.walk.FolderWalk` (`walk`: one shared with
    other folders of the same read; by default a new one, whose skips are logged once): links
    never leave their class folder and no real image is taken twice. The index carries the
    walk's :class:`~alexnet_lab.data.walk.SkipReport` as ``index.report``.

    Raises:
        UserInputError: the folder is missing, has no class folders, or a class folder holds
            no images (all such folders are named).
    """
    folder = _existing_dir(root)
    own = walk is None
    walk = FolderWalk() if walk is None else walk
    class_dirs = walk.subfolders(folder)
    if not class_dirs:
        loose = FolderWalk().files(folder, is_image_path, recursive=False)
        found = f"{len(loose)} images but no class folders" if loose else "no class folders and no images"
        raise UserInputError(
            f"expected class folders with images ({folder}/<class>/<image>, extensions {_EXTENSIONS}); "
            f"found {found} in '{folder}'. Put each class's images in a folder named after the class."
        )
    samples: list[Sample] = []
    empty: list[str] = []
    for label, class_dir in enumerate(class_dirs):
        files = walk.files(class_dir, is_image_path)
        if not files:
            empty.append(str(class_dir))
        samples.extend(Sample(path, label) for path in files)
    if empty:
        raise UserInputError(
            f"expected every class folder to hold images ({_EXTENSIONS}); received {len(empty)} without any: "
            f"{preview_names(empty)}. Add images to them or remove them."
        )
    if own:
        walk.report.warn(f"class folder '{folder}'")
    return DatasetIndex(tuple(samples), tuple(d.name for d in class_dirs), root=str(folder), report=walk.report)


def _split_folders(folder: Path, walk: FolderWalk) -> dict[str, Path]:
    """Canonical split name -> folder, for the split folders directly under `folder`."""
    subfolders = walk.subfolders(folder)
    splits = {d: SPLIT_ALIASES[d.name.lower()] for d in subfolders if d.name.lower() in SPLIT_ALIASES}
    if not splits:
        return {}
    others = [d.name for d in subfolders if d not in splits]
    if others:
        raise UserInputError(
            f"expected either class folders or split folders (train/val/test) in '{folder}'; received both: "
            f"splits {', '.join(sorted(d.name for d in splits))} and other folders {preview_names(others)}. "
            "Move the other folders into a split, or rename a class that is called like a split."
        )
    chosen: dict[str, Path] = {}
    for split_dir, split in splits.items():
        if split in chosen:
            raise UserInputError(
                f"expected one folder per split in '{folder}'; received both '{chosen[split].name}' and "
                f"'{split_dir.name}' for split '{split}'. Merge or remove one of them."
            )
        chosen[split] = split_dir
    return {split: chosen[split] for split in _SPLIT_ORDER if split in chosen}


def read_folder_splits(root: str | os.PathLike[str]) -> dict[str, DatasetIndex]:
    """Index a dataset folder that may be divided into train/val/test split folders.

    With split folders (``train``, ``val``/``valid``/``validation``, ``test``/``testing``,
    any case) each is read with :func:`read_class_folder` and all splits share one class list:
    train's classes when there is a train split (a val/test class missing from train is an
    error), otherwise the sorted union. Every split's root is `root`. Without split folders the
    whole tree is one index under the key ``'all'``.

    Returns:
        Split name -> index, in the order train, val, test (or just ``{'all': index}``).

    Raises:
        UserInputError: as :func:`read_class_folder`, or for mixed/duplicated split folders, or
            val/test classes that train lacks.
    """
    folder = _existing_dir(root)
    walk = FolderWalk()  # shared by the splits: no real image is taken twice across train / val / test
    split_dirs = _split_folders(folder, walk)
    if not split_dirs:
        return {ALL_SPLIT: read_class_folder(folder)}  # a fresh walk, so the top folder is counted once
    indexes = {split: read_class_folder(path, walk) for split, path in split_dirs.items()}
    walk.report.warn(f"data folder '{folder}'")
    if "train" in indexes:
        class_names = indexes["train"].class_names
    else:
        class_names = tuple(sorted({name for index in indexes.values() for name in index.class_names}))
    return {
        split: replace(align_to(index, class_names, known_as="the train split"), root=str(folder))
        for split, index in indexes.items()
    }


def _parse_lines(text: str, problems: list[str]) -> list[tuple[int, str, str]]:
    """(line number, path, label token) for each data line; malformed lines go to `problems`."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)  # the label is the last token, so paths may contain spaces
        if len(parts) != 2:
            problems.append(f"line {number}: expected '<path> <label>', received {line!r}")
            continue
        entries.append((number, parts[0], parts[1]))
    return entries


def _label_of(token: str, number: int, positions: dict[str, int], problems: list[str]) -> int:
    """Label for one token given class name -> index; -1 (and a problem) when invalid."""
    if token in positions:
        return positions[token]
    if _INT_LABEL.fullmatch(token):
        label = int(token)
        if 0 <= label < len(positions):
            return label
        problems.append(f"line {number}: label {label} is out of range 0..{len(positions) - 1}")
        return -1
    problems.append(f"line {number}: unknown class '{token}'.{did_you_mean(token, positions)}".rstrip("."))
    return -1


def _infer_class_names(entries: list[tuple[int, str, str]], problems: list[str]) -> tuple[str, ...]:
    """Class names when none are given: '0'..'max' for index labels, sorted names otherwise."""
    is_int = [bool(_INT_LABEL.fullmatch(token)) for _, _, token in entries]
    if all(is_int):
        largest = max(int(token) for _, _, token in entries)
        if largest >= _MAX_INFERRED_CLASSES:
            problems.append(f"label {largest} is too large to number classes from; pass class_names")
            return ()
        return tuple(str(i) for i in range(largest + 1))
    if any(is_int):
        first_kind, other_kind = ("an index", "a class name") if is_int[0] else ("a class name", "an index")
        problems.extend(
            f"line {number}: label '{token}' is {other_kind} but line {entries[0][0]} uses {first_kind}; "
            "use one kind or pass class_names"
            for (number, _, token), kind in zip(entries, is_int)
            if kind != is_int[0]
        )
    return tuple(sorted({token for (_, _, token), kind in zip(entries, is_int) if not kind}))


def _read_list_text(path: str | os.PathLike[str]) -> tuple[Path, str]:
    list_path = Path(path).expanduser()
    if not list_path.is_file():
        raise UserInputError(
            f"expected a list file of '<path> <label>' lines; received '{os.fspath(path)}', which does not exist."
        )
    try:
        return list_path, list_path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise UserInputError(f"expected a UTF-8 text list file; cannot read '{list_path}' ({exc}).") from None


def _bad_lines_error(list_path: Path, problems: list[str]) -> UserInputError:
    """One error quoting the first few problems in line order and counting the rest."""
    def line_number(problem: str) -> int:
        match = re.match(r"line (\d+):", problem)
        return int(match.group(1)) if match else 0

    ordered = sorted(problems, key=line_number)  # stable: keeps per-line order
    more = f"; and {len(ordered) - _MAX_REPORTED} more" if len(ordered) > _MAX_REPORTED else ""
    return UserInputError(
        f"list file '{list_path}' has {len(ordered)} bad line(s): "
        f"{'; '.join(ordered[:_MAX_REPORTED])}{more}. Fix or remove those lines."
    )


def read_list_file(
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    check_exists: bool = True,
) -> DatasetIndex:
    """Index a list file of ``<path> <label>`` lines.

    Relative paths are relative to the list file's folder. A label is a class name or a class
    index; with `class_names` given, names are looked up in it (a token that is a name wins
    over the same token read as an index). Without it, all-index labels get classes '0'..'K-1'
    and all-name labels get the sorted distinct names. Lines starting with '#' and blank lines
    are skipped.

    Raises:
        UserInputError: the file is missing or not text, holds no samples, or has bad lines
            (each reported with its line number: syntax, unknown class, range, missing file).
    """
    list_path, text = _read_list_text(path)
    problems: list[str] = []
    entries = _parse_lines(text, problems)
    if not entries and not problems:
        raise UserInputError(f"expected '<path> <label>' lines in list file '{list_path}'; received none. Add samples.")
    names = tuple(str(n) for n in class_names) if class_names is not None else _infer_class_names(entries, problems)
    positions = {name: i for i, name in enumerate(names)}
    base = list_path.parent.absolute()
    samples: list[Sample] = []
    for number, raw_path, token in entries:
        label = _label_of(token, number, positions, problems)
        file_path = os.path.normpath(base / os.path.expanduser(raw_path))
        if check_exists and not os.path.isfile(file_path):
            problems.append(f"line {number}: file not found: '{file_path}'")
        samples.append(Sample(file_path, label))
    if problems:
        raise _bad_lines_error(list_path, problems)
    return DatasetIndex(tuple(samples), names, root=str(base))
