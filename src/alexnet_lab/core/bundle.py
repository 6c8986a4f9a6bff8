"""WeightBundle: canonical tensors plus the metadata that makes them usable without flags.

Every file the project writes carries the variant, the class names and the preprocessing, so
`predict` and `evaluate` on any saved model are right by default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fingerprint import DIGEST_KEY, FINGERPRINT_KEY
from alexnet_lab.core.layout import as_canonical, check_layout, infer_num_classes
from alexnet_lab.core.metadata import MetadataError, check_class_names, check_input_size, shown
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.core.spec import ArchSpec, get_arch
from alexnet_lab.core.wordnet import check_class_ids

METADATA_FORMAT = "alexnet-lab/canonical"
METADATA_VERSION = "1"


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 class names in the standard index order (shipped with the package)."""
    text = resources.files("alexnet_lab.resources").joinpath("imagenet_classes.txt").read_text("utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:  # a broken install, not user input
        raise RuntimeError(f"imagenet_classes.txt holds {len(names)} names instead of 1000")
    return names


def generic_categories(num_classes: int) -> tuple[str, ...]:
    return tuple(f"class_{i}" for i in range(num_classes))


@dataclass(frozen=True)
class ModelMeta:
    """What the weights are: variant, class names, preprocessing and where they came from."""

    variant: str
    categories: tuple[str, ...]
    preprocess: PreprocessSpec
    source: str = ""  # registry name, file name or run folder the weights came from
    source_sha256: str = ""  # hash of the original file, when known
    input_size: int = 0  # 0: the preprocessing crop size
    class_ids: tuple[str, ...] = ()  # WordNet ID per output (core.wordnet), () when the classes have none
    # what a read file recorded about its tensors (core.fingerprint); writers compute fresh ones,
    # so these never travel into another file, and they do not take part in comparisons
    tensors_sha256: str = field(default="", compare=False)
    fingerprint: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_meta(self)
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "class_ids", tuple(self.class_ids))

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def arch(self) -> ArchSpec:
        return get_arch(self.variant)

    def to_metadata(self) -> dict[str, str]:
        """Flat str -> str metadata (the form safetensors and HDF5 attributes hold)."""
        return {
            "format": METADATA_FORMAT,
            "format_version": METADATA_VERSION,
            "variant": self.variant,
            "categories": json.dumps(list(self.categories)),
            "preprocess": json.dumps(self.preprocess.to_dict()),
            "source": self.source,
            "source_sha256": self.source_sha256,
            "input_size": str(self.input_size),
            **({"class_ids": json.dumps(list(self.class_ids))} if self.class_ids else {}),
        }

    @classmethod
    def from_metadata(cls, data: Mapping[str, str], where: str = "file") -> ModelMeta:
        """Parse what :meth:`to_metadata` wrote; raises WeightFormatError when it is not ours."""
        if data.get("format") != METADATA_FORMAT:
            raise WeightFormatError(
                f"{where} has no alexnet-lab metadata (format={data.get('format')!r}); "
                "write it with `alexnet convert` or pass the original weights."
            )
        try:
            return cls(
                variant=data["variant"],
                categories=tuple(json.loads(data["categories"])),
                preprocess=PreprocessSpec.from_dict(json.loads(data["preprocess"])),
                source=data.get("source", ""),
                source_sha256=data.get("source_sha256", ""),
                input_size=int(data.get("input_size", "0") or 0),
                class_ids=tuple(json.loads(data.get("class_ids", "[]"))),
                tensors_sha256=str(data.get(DIGEST_KEY, "")),
                fingerprint=str(data.get(FINGERPRINT_KEY, "")),
            )
        except MetadataError as exc:  # a field the validator refused: named as such
            raise MetadataError(f"{where} has invalid alexnet-lab metadata: {exc}") from None
        except (KeyError, ValueError, TypeError) as exc:
            raise WeightFormatError(f"{where} has damaged alexnet-lab metadata ({exc}); re-create the file.") from None


def check_meta(meta: ModelMeta) -> None:
    """ModelMeta's part of the one metadata validator (core.metadata): the preprocessing is a
    PreprocessSpec (which validated its own fields), the class names non-blank and unique, the
    WordNet IDs none or one per class (core.wordnet), the input size 0 or sane. fc8's rows
    against the class count: check_fits, once tensors are known.

    Raises:
        MetadataError: naming the field and the value.
    """
    if not isinstance(meta.preprocess, PreprocessSpec):
        raise MetadataError(f"metadata 'preprocess' must be a PreprocessSpec; received {shown(meta.preprocess)}.")
    check_class_names(meta.categories)
    check_class_ids(meta.class_ids, len(meta.categories))
    check_input_size(meta.input_size)


def check_fits(tensors: Mapping[str, object], meta: ModelMeta) -> None:
    """Raise unless the tensors (arrays, or anything with a .shape) fit the metadata's variant
    and class count; readers call it on a header's shapes before reading any data.

    Raises:
        WeightFormatError: fc8 and the class names disagree.
        LayoutError: every missing, extra and mis-shaped tensor, listed at once.
    """
    n = infer_num_classes(tensors)
    if n != meta.num_classes:
        raise MetadataError(
            f"the weights have {n} classes (fc8's rows) but their metadata 'categories' names {meta.num_classes}; "
            "pass class names that match fc8."
        )
    check_layout(tensors, meta.variant, n)


@dataclass(frozen=True)
class WeightBundle:
    """Canonical float32 tensors (validated) and their metadata."""

    tensors: Mapping[str, np.ndarray]
    meta: ModelMeta = field(repr=False)

    def __post_init__(self) -> None:
        check_fits(self.tensors, self.meta)
        object.__setattr__(self, "tensors", as_canonical(self.tensors, self.meta.variant, self.meta.num_classes))

    @property
    def arch(self) -> ArchSpec:
        return self.meta.arch

    @property
    def num_classes(self) -> int:
        return self.meta.num_classes

    def param_count(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    @property
    def input_size(self) -> int:
        """The square input the model is fed: the metadata's, else the preprocessing's crop."""
        return self.meta.input_size or self.meta.preprocess.crop

    def metadata(self) -> dict[str, str]:
        """What a written file stores: the metadata plus the digest and fingerprint of these
        tensors (core.fingerprint); the fingerprint is left out when the input size does not
        fit the classifier, as no forward pass exists then."""
        from alexnet_lab.core.errors import UserInputError
        from alexnet_lab.core.fingerprint import DIGEST_KEY, integrity_records, tensors_digest

        try:
            self.arch.check_input_size(self.input_size)
        except UserInputError:
            return {**self.meta.to_metadata(), DIGEST_KEY: tensors_digest(self.tensors, self.arch, self.num_classes)}
        records = integrity_records(self.tensors, self.meta.variant, self.num_classes, self.meta.preprocess,
                                    self.input_size)
        return {**self.meta.to_metadata(), **records}

    def with_meta(self, **changes: object) -> WeightBundle:
        return WeightBundle(self.tensors, replace(self.meta, **changes))
