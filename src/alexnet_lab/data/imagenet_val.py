"""The ImageNet (ILSVRC-2012) validation set in the layouts people have, labelled by WordNet ID.

`--data imagenet-val --data-dir PATH` is read in one of three layouts, told apart by what PATH
holds (`detect`):

* ``wnid-folders``: one class folder per WordNet ID (``n01440764/*.JPEG``);
* ``devkit``: the flat ``ILSVRC2012_val_*.JPEG`` folder with the devkit's
  ``ILSVRC2012_devkit_t12/data/{meta.mat, ILSVRC2012_validation_ground_truth.txt}``, whose line i
  is image i's ILSVRC2012_ID (1..1000, *not* the sorted order models use), turned into a WordNet
  ID through meta.mat's `synsets` struct;
* ``kaggle``: the flat folder with ``LOC_val_solution.csv`` (ImageId, PredictionString whose first
  token is the WordNet ID) and ``LOC_synset_mapping.txt``.

The devkit folder and the Kaggle files are looked for in PATH and up to four folders above it
(Kaggle's ``ILSVRC/Data/CLS-LOC/val``); PATH may also be the Kaggle top folder, or a folder
whose ``val/`` holds one of the layouts (torchvision's ImageNet root). Labels always
go to the weights' outputs through their WordNet IDs (ModelMeta.class_ids), never through a
folder's position; a partial or inconsistent set is refused, so a figure is never computed on
labels that cannot be right.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.wordnet import is_wnid
from alexnet_lab.data.index import DatasetIndex, Sample, align_to, preview_names
from alexnet_lab.data.sources import read_class_folder
from alexnet_lab.data.walk import FolderWalk, list_files

log = logging.getLogger(__name__)

IMAGENET_VAL = "imagenet-val"  # the --data value
LAYOUTS = {
    "wnid-folders": "class folders named by WordNet ID",
    "devkit": "flat ILSVRC2012_val_*.JPEG + ILSVRC2012_devkit_t12 ground truth (meta.mat)",
    "kaggle": "flat ILSVRC2012_val_*.JPEG + LOC_val_solution.csv / LOC_synset_mapping.txt",
}
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
KAGGLE_SOLUTION, KAGGLE_MAPPING = "LOC_val_solution.csv", "LOC_synset_mapping.txt"
KAGGLE_IMAGES = Path("ILSVRC", "Data", "CLS-LOC", "val")
_VAL_IMAGE = re.compile(r"(ILSVRC2012_val_([0-9]{8}))\.JPEG", re.IGNORECASE)
_LEVELS_UP = 4  # ILSVRC/Data/CLS-LOC/val sits four folders below the Kaggle files
_WHOLE = "restore the complete set (--limit-per-class N then evaluates part of it)"
_EXPECTED = ("expected one of: " + "; ".join(f"{name} ({text})" for name, text in LAYOUTS.items()))


@dataclass(frozen=True)
class ValSet:
    """A validation set read and labelled into the weights' outputs.

    Attributes:
        index: the samples, sorted by file name; labels index the weights' outputs and
            class_names are the weights' WordNet IDs.
        layout: one of LAYOUTS.
        labels_from: the file or folder the labels came from.
    """

    index: DatasetIndex
    layout: str
    labels_from: str


def _refuse(problem: str, fix: str) -> UserInputError:
    return UserInputError(f"--data {IMAGENET_VAL}: {problem}; {fix}")


def _find_up(folder: Path, name: str) -> Path | None:
    for place in [folder, *folder.parents][: _LEVELS_UP + 1]:
        if (place / name).exists():
            return place / name
    return None


def _is_val_image(name: str) -> bool:
    return _VAL_IMAGE.fullmatch(name) is not None


def _flat_images(folder: Path) -> dict[int, str]:
    """Image number -> path of the ILSVRC2012_val_NNNNNNNN.JPEG files directly in `folder`, listed
    by the one folder walker (data.walk)."""
    return {int(_VAL_IMAGE.fullmatch(os.path.basename(path)).group(2)): path
            for path in list_files(folder, _is_val_image, recursive=False)}


def read_ground_truth(path: Path) -> list[int]:
    """The devkit's ground truth: line i holds image i's ILSVRC2012_ID."""
    labels = []
    for number, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        if not line.strip().isdigit():
            raise _refuse(f"'{path}' line {number} holds {line.strip()[:40]!r}, expected an ILSVRC2012_ID (1..1000)",
                          "restore the devkit's file")
        labels.append(int(line))
    return labels


def read_meta_mat(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> WordNet ID from the devkit's meta.mat `synsets` struct array."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        synsets = loadmat(str(path), squeeze_me=True)["synsets"]
        ids, wnids = synsets["ILSVRC2012_ID"].ravel(), synsets["WNID"].ravel()
        return {int(i): str(w) for i, w in zip(ids, wnids)}
    except (MatReadError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise _refuse(f"cannot read the synsets (ILSVRC2012_ID, WNID) of '{path}' ({type(exc).__name__}: {exc})",
                      "restore the devkit's meta.mat") from None


def _devkit_labels(devkit: Path, images: dict[int, str]) -> dict[str, str]:
    truth, meta = devkit / "data" / GROUND_TRUTH, devkit / "data" / "meta.mat"
    for needed in (truth, meta):
        if not needed.is_file():
            raise _refuse(f"the devkit folder '{devkit}' lacks {needed.name}", "restore the devkit")
    labels = read_ground_truth(truth)
    if sorted(images) != list(range(1, len(labels) + 1)):
        missing = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in range(1, len(labels) + 1) if n not in images]
        extra = [os.path.basename(images[n]) for n in sorted(images) if not 1 <= n <= len(labels)]
        raise _refuse(f"{GROUND_TRUTH} labels {len(labels)} images but the folder holds {len(images)} "
                      f"(missing {preview_names(missing, 3) or 'none'}; unlabelled {preview_names(extra, 3) or 'none'})",
                      _WHOLE)
    wnid_of = read_meta_mat(meta)
    unknown = sorted({label for label in labels if label not in wnid_of})
    if unknown:
        raise _refuse(f"{GROUND_TRUTH} uses ILSVRC2012_IDs that meta.mat lacks: {preview_names([str(u) for u in unknown])}",
                      "use the ground truth and meta.mat of the same devkit")
    return {images[n]: wnid_of[label] for n, label in enumerate(labels, start=1)}


def _read_mapping(path: Path) -> list[str]:
    lines = [line.split(None, 1) for line in path.read_text("utf-8", errors="replace").splitlines() if line.strip()]
    bad = next((parts[0] for parts in lines if not is_wnid(parts[0])), None)
    if bad is not None:
        raise _refuse(f"'{path}' has a line starting {bad[:30]!r}, expected 'n01440764 tench, Tinca tinca' lines",
                      f"restore Kaggle's {KAGGLE_MAPPING}")
    return [parts[0] for parts in lines]


def _kaggle_labels(solution: Path, images: dict[int, str], class_ids: Sequence[str]) -> dict[str, str]:
    mapping_file = solution.parent / KAGGLE_MAPPING
    if not mapping_file.is_file():
        raise _refuse(f"'{solution.parent}' has {KAGGLE_SOLUTION} but no {KAGGLE_MAPPING}", "put Kaggle's mapping beside it")
    mapping = _read_mapping(mapping_file)
    if mapping != list(class_ids):
        at = next((i for i, (a, b) in enumerate(zip(mapping, class_ids)) if a != b), min(len(mapping), len(class_ids)))
        theirs = mapping[at] if at < len(mapping) else "the end"
        ours = class_ids[at] if at < len(class_ids) else "the end"
        raise _refuse(f"{KAGGLE_MAPPING} lists {len(mapping)} WordNet IDs in another order than the weights' "
                      f"{len(class_ids)} outputs (line {at + 1}: {theirs}, the weights' output {at}: {ours})",
                      "use the mapping that belongs to these weights, or weights whose classes it lists")
    by_name = {os.path.basename(path).rsplit(".", 1)[0].upper(): path for path in images.values()}
    rows: dict[str, str] = {}
    with open(solution, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if [cell.strip() for cell in header[:2]] != ["ImageId", "PredictionString"]:
            raise _refuse(f"'{solution}' starts {','.join(header)[:60]!r}, expected the header ImageId,PredictionString",
                          f"restore Kaggle's {KAGGLE_SOLUTION}")
        for number, row in enumerate(reader, start=2):
            tokens = row[1].split() if len(row) > 1 else []
            if not row or not tokens or row[0].strip().upper() in rows:
                raise _refuse(f"'{solution}' line {number} is empty, has no WordNet ID or repeats an image",
                              f"restore Kaggle's {KAGGLE_SOLUTION}")
            rows[row[0].strip().upper()] = tokens[0]
    missing, unlabelled = sorted(set(rows) - set(by_name)), sorted(set(by_name) - set(rows))
    if missing or unlabelled:
        raise _refuse(f"{KAGGLE_SOLUTION} labels {len(rows)} images but the folder holds {len(by_name)} "
                      f"(missing {preview_names(missing, 3) or 'none'}; unlabelled {preview_names(unlabelled, 3) or 'none'})",
                      _WHOLE)
    return {by_name[name]: wnid for name, wnid in rows.items()}


def _flat_index(folder: Path, images: dict[int, str], class_ids: Sequence[str]) -> tuple[DatasetIndex, str, str]:
    devkit, solution = _find_up(folder, DEVKIT), _find_up(folder, KAGGLE_SOLUTION)
    if devkit is not None:
        labels, layout, source = _devkit_labels(devkit, images), "devkit", str(devkit)
    elif solution is not None:
        labels, layout, source = _kaggle_labels(solution, images, class_ids), "kaggle", str(solution)
    else:
        raise _refuse(f"'{folder}' holds {len(images)} ILSVRC2012_val_*.JPEG images but no ground truth was found "
                      f"(no {DEVKIT}/ and no {KAGGLE_SOLUTION} in it or the {_LEVELS_UP} folders above it)",
                      f"put the devkit ({DEVKIT}/data/meta.mat and {GROUND_TRUTH}) or Kaggle's "
                      f"{KAGGLE_SOLUTION} + {KAGGLE_MAPPING} beside the images")
    names = sorted(set(labels.values()))
    position = {name: i for i, name in enumerate(names)}
    samples = tuple(Sample(path, position[labels[path]]) for path in sorted(labels, key=os.path.basename))
    return DatasetIndex(samples, names, str(folder)), layout, source


def detect(folder: Path) -> tuple[str, Path]:
    """(layout family 'wnid-folders' or 'flat', the image folder) for a --data-dir."""
    if (folder / KAGGLE_IMAGES).is_dir():
        folder = folder / KAGGLE_IMAGES
    wnid_dirs = [path.name for path in FolderWalk().subfolders(folder) if is_wnid(path.name)]
    flat = any(_is_val_image(entry.name) for entry in os.scandir(folder))
    if wnid_dirs and flat:
        raise _refuse(f"'{folder}' holds both WordNet-ID class folders and flat ILSVRC2012_val_*.JPEG images",
                      "point --data-dir at one layout")
    if flat:
        return "flat", folder
    if wnid_dirs:
        return "wnid-folders", folder
    if (folder / "val").is_dir():  # a torchvision-style ImageNet root: train/ and val/
        return detect(folder / "val")
    raise _refuse(f"found no validation images in '{folder}'", _EXPECTED)


def _check_classes(index: DatasetIndex, class_ids: Sequence[str]) -> None:
    used = sorted({index.class_names[s.label] for s in index.samples})
    not_wnid = [name for name in used if not is_wnid(name)]
    if not_wnid:
        raise _refuse(f"class folders {preview_names(not_wnid, 5)} are not WordNet IDs",
                      "name each class folder by its WordNet ID (n01440764, ...) or use `--data FOLDER`")
    known = set(class_ids)
    unknown = [name for name in used if name not in known]
    if unknown:
        raise _refuse(f"the set uses {len(unknown)} WordNet ID(s) the weights do not know: {preview_names(unknown, 5)}",
                      f"evaluate weights whose {len(class_ids)} outputs include them (their class_ids)")
    absent = [wnid for wnid in class_ids if wnid not in set(used)]
    if absent:
        raise _refuse(f"the set has no images of {len(absent)} of the weights' {len(class_ids)} classes "
                      f"({preview_names(absent, 3)}): a partial set", "evaluate on the complete validation set")


def read_imagenet_val(data_dir: str | os.PathLike[str] | None, class_ids: Sequence[str],
                      limit_per_class: int = 0) -> ValSet:
    """Read the validation set under `data_dir`, labelled into the outputs `class_ids` name.

    Args:
        data_dir: the --data-dir folder (see the module docstring for the layouts).
        class_ids: the weights' WordNet IDs in output order (ModelMeta.class_ids).
        limit_per_class: keep the first N images of each class, by file name (0: all).

    Raises:
        UserInputError: no --data-dir, weights without WordNet IDs, an unknown layout, or a
            partial or inconsistent set (one line saying what differs).
    """
    if limit_per_class < 0:
        raise UserInputError(f"--limit-per-class takes N >= 1 (or 0 for all); received {limit_per_class}.")
    if not class_ids:
        raise _refuse("the weights carry no WordNet IDs (class_ids), so the set's labels cannot be matched to their "
                      "outputs", "evaluate ImageNet-1k weights (a registry name, or a file converted from one)")
    if data_dir is None or not Path(data_dir).expanduser().is_dir():
        raise _refuse(f"--data-dir {'is missing' if data_dir is None else repr(str(data_dir)) + ' is not a folder'}",
                      f"pass --data-dir PATH, {_EXPECTED}")
    family, folder = detect(Path(data_dir).expanduser().absolute())
    if family == "wnid-folders":
        index, layout, source = read_class_folder(folder), "wnid-folders", str(folder)
    else:
        index, layout, source = _flat_index(folder, _flat_images(folder), class_ids)
    _check_classes(index, class_ids)
    index = align_to(index, class_ids, known_as="the weights")
    ordered = sorted(index.samples, key=lambda s: (os.path.basename(s.path), s.path))
    index = DatasetIndex(tuple(ordered), index.class_names, index.root)
    if limit_per_class:
        from alexnet_lab.data.datasets import first_per_class

        index = first_per_class(index, limit_per_class)
    counts = [n for n in index.class_counts().values() if n]
    if min(counts) != max(counts):
        log.warning("imagenet-val: classes hold %d to %d images; the ILSVRC2012 validation set has the same number "
                    "in every class", min(counts), max(counts))
    return ValSet(index, layout, source)
