"""WordNet IDs (WNIDs): how ImageNet names its classes (`n02123045` is 'tabby').

The 1000 ILSVRC-2012 WNIDs ship with the package in the order of the registry weights' outputs,
the sorted-synset order every ImageNet-1k model uses (index 0 = n01440764 tench, 281 =
n02123045 tabby, 999 = n15075141 toilet tissue); `imagenet_classes.txt` holds their names in
the same order. The list is timm 1.0.31's `timm/data/_info/imagenet_synsets.txt` (Apache-2.0),
checked line by line against imagenet_classes.txt with timm's synset-to-lemma table: 998 names
are a lemma of their ID, the other two are the disambiguated 'crane bird' and 'maillot tank suit'.
Validation labels are matched to a model's outputs through these IDs, never through a folder's
position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from alexnet_lab.core.metadata import FIX, MetadataError, shown

WNID = re.compile(r"n[0-9]{8}")


def is_wnid(text: object) -> bool:
    """True for a WordNet noun ID: 'n' and eight digits."""
    return isinstance(text, str) and WNID.fullmatch(text) is not None


@lru_cache(maxsize=1)
def imagenet_class_ids() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 WNIDs in the registry weights' output order (shipped with the package)."""
    text = resources.files("alexnet_lab.resources").joinpath("imagenet_wnids.txt").read_text("utf-8")
    ids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(ids) != 1000 or len(set(ids)) != 1000 or not all(map(is_wnid, ids)):  # a broken install, not user input
        raise RuntimeError("imagenet_wnids.txt does not hold 1000 distinct WordNet IDs")
    return ids


def check_class_ids(class_ids: Sequence[str], num_classes: int) -> None:
    """ModelMeta.class_ids' part of the one metadata validator (core.bundle.check_meta): empty (the
    weights know no IDs) or one distinct WordNet ID per class, in output order.

    Raises:
        MetadataError: a count other than the class count, a malformed ID or a repeat.
    """
    ids = tuple(class_ids)
    if not ids:
        return
    expected = f"expected one WordNet ID per output, in output order, or none; {FIX}"
    if len(ids) != num_classes:
        raise MetadataError(f"metadata 'class_ids' lists {len(ids)} class IDs for {num_classes} classes; {expected}")
    bad = next((i for i in ids if not is_wnid(i)), None)
    if bad is not None:
        raise MetadataError(f"metadata 'class_ids' has class ID {shown(bad)}, not a WordNet ID like 'n01440764'; "
                            f"{expected}")
    if len(set(ids)) != len(ids):
        raise MetadataError(f"metadata 'class_ids' lists class ID '{next(i for i in ids if ids.count(i) > 1)}' twice; "
                            f"{expected}")
