"""The weights table: one frozen :class:`WeightEntry` per known weight file, the one home of every
weight fact.

An entry binds everything that must travel with the weights: where to get them and how to
check them (url, file name, sha256, size), what they are (variant, source format, class
names), how inputs must be prepared (the PreprocessSpec they were trained with), the published
figures, and the names other libraries give them (timm's tag, torchvision's enum member). The
rest is derived here or in weights.catalog: a variant's default weights and default
preprocessing, timm's `name.tag` model names, torchvision's 'IMAGENET1K_V1' / 'DEFAULT'.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from alexnet_lab.core.bundle import imagenet_categories
from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.preprocessing import BVLC_CAFFE, CIFAR_32, TORCHVISION_IMAGENET, PreprocessSpec
from alexnet_lab.core.spec import VARIANTS, get_arch
from alexnet_lab.core.wordnet import imagenet_class_ids

SOURCE_FORMATS = ("torchvision-pth", "caffe-npy")
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class WeightEntry:
    """One known weight file and everything bound to it.

    Attributes:
        name: registry name, as typed on the command line (`--weights torchvision`).
        aliases: other accepted names.
        variant: the architecture the weights fit ('owt' or 'original').
        url: where :func:`alexnet_lab.weights.download.fetch` gets the file.
        filename: the name it is cached under.
        sha256: full hex digest, or '' when no trusted value is known.
        sha256_prefix: leading hex digits of the digest (torchvision puts 8 in its file names);
            derived from `sha256` when that is set.
        size: size in bytes (0 when unknown).
        size_exact: False when `size` is only approximate and must not be checked strictly.
        source_format: 'torchvision-pth' or 'caffe-npy' — which reader opens the file.
        preprocess: the input preprocessing the weights were trained with.
        categories: returns the class names in output-index order (called lazily so the
            registry costs nothing to import).
        class_ids: returns the WordNet ID of each output, in output order (lazily, like categories).
        metrics: published evaluation results on the ImageNet-1k validation set as (name, value)
            pairs in percent, e.g. ('acc@1', 56.522); `alexnet evaluate --data imagenet-val`
            checks a copy against them (evaluate.reproduce).
        metrics_crops: views per image the published figures average (1: one centre crop).
        metrics_note: where the metrics come from and their protocol, or why there are none.
        description: one line on what the weights are.
        license: a note on the terms of use.
        license_id: the same as a model card's `license:` id ('bsd-3-clause'; 'other' with the note).
        dataset: the Hub dataset id of the training data, for a model card's `datasets:`.
        tag: timm's pretrained tag (`alexnet_owt.tv_in1k`); the first entry of a variant is its default.
        enum_names: torchvision's weight enum members that name this file ('IMAGENET1K_V1').
    """

    name: str
    variant: str
    url: str
    filename: str
    source_format: str
    preprocess: PreprocessSpec
    aliases: tuple[str, ...] = ()
    sha256: str = ""
    sha256_prefix: str = ""
    size: int = 0
    size_exact: bool = True
    categories: Callable[[], tuple[str, ...]] = field(default=imagenet_categories, compare=False, repr=False)
    class_ids: Callable[[], tuple[str, ...]] = field(default=imagenet_class_ids, compare=False, repr=False)
    metrics: tuple[tuple[str, float], ...] = ()
    metrics_crops: int = 1
    metrics_note: str = ""
    description: str = ""
    license: str = ""
    license_id: str = "unknown"
    dataset: str = ""
    tag: str = ""
    enum_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise unknown_name_error("variant", self.variant, VARIANTS)
        if self.source_format not in SOURCE_FORMATS:
            raise unknown_name_error("source format", self.source_format, SOURCE_FORMATS)
        for label in ("sha256", "sha256_prefix"):
            value = getattr(self, label).strip().lower()
            object.__setattr__(self, label, value)
            if not _HEX.fullmatch(value) or len(value) > 64 or (label == "sha256" and len(value) not in (0, 64)):
                raise UserInputError(
                    f"weight entry '{self.name}': expected {label} as hex "
                    f"({'64 digits' if label == 'sha256' else 'at most 64 digits'}) or ''; received {value!r}."
                )
        if self.sha256 and not self.sha256.startswith(self.sha256_prefix):
            raise UserInputError(
                f"weight entry '{self.name}': sha256_prefix {self.sha256_prefix!r} is not the start of "
                f"sha256 {self.sha256!r}; fix one of them."
            )
        if self.sha256 and not self.sha256_prefix:
            object.__setattr__(self, "sha256_prefix", self.sha256[:8])

    @property
    def names(self) -> tuple[str, ...]:
        """The registry name followed by its aliases."""
        return (self.name, *self.aliases)

    @property
    def expected_hash(self) -> str:
        """The full sha256 when known, else its known prefix, else '' (nothing to check against)."""
        return self.sha256 or self.sha256_prefix

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(self.categories())

    @property
    def metrics_dict(self) -> dict[str, float]:
        return dict(self.metrics)


TORCHVISION = WeightEntry(
    name="torchvision",
    aliases=("imagenet",),
    variant="owt",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    filename="alexnet-owt-7be5be79.pth",
    source_format="torchvision-pth",
    preprocess=TORCHVISION_IMAGENET,
    sha256_prefix="7be5be79",  # torchvision file names carry the first 8 hex digits of the sha256
    size=244_408_911,  # 233.1 MiB
    metrics=(("acc@1", 56.522), ("acc@5", 79.066)),
    metrics_note="ImageNet-1k validation (50,000 images), as reported by torchvision (IMAGENET1K_V1): resize the "
    "shorter side to 256, one 224 centre crop, RGB, ImageNet mean/std.",
    description="torchvision's AlexNet ('one weird trick' variant), IMAGENET1K_V1 weights.",
    license="torchvision (BSD-3-Clause); trained on ImageNet-1k, whose terms of access apply.",
    license_id="bsd-3-clause",
    dataset="imagenet-1k",
    tag="tv_in1k",
    enum_names=("IMAGENET1K_V1",),
)

BVLC = WeightEntry(
    name="bvlc",
    variant="original",
    url="http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy",
    filename="bvlc_alexnet.npy",
    source_format="caffe-npy",
    preprocess=BVLC_CAFFE,
    # No published sha256 exists for this file: fetch() records the hash of the first download
    # in the cache (bvlc_alexnet.npy.sha256) and checks every later use against that record.
    size=243_861_814,  # 60,965,224 float32 + ~0.9 kB of pickle; not independently verified,
    size_exact=False,  # so it is never checked strictly
    metrics=(("acc@1", 57.1), ("acc@5", 80.2)),
    metrics_note="ImageNet-1k validation, as BVLC's model zoo reports them for the Caffe model this file was "
    "converted from: resize to 256x256, one 227 centre crop, BGR 0-255 minus the Caffe mean (BVLC subtracted "
    "the mean image; this project the per-channel mean).",
    description="BVLC's Caffe reference AlexNet (the 2012 architecture), converted to a TensorFlow "
    ".npy dict by Michael Guerzhoy (University of Toronto).",
    license="BVLC released the Caffe model for unrestricted use; trained on ImageNet-1k, whose terms of access apply.",
    license_id="other",
    dataset="imagenet-1k",
    tag="bvlc_in1k",
)

ENTRIES: dict[str, WeightEntry] = {entry.name: entry for entry in (TORCHVISION, BVLC)}
_BY_NAME: dict[str, WeightEntry] = {name: entry for entry in ENTRIES.values() for name in entry.names}
# variant -> its default (first) entry; variants without public weights have none
DEFAULT_ENTRIES: dict[str, WeightEntry] = {}
for _entry in ENTRIES.values():
    DEFAULT_ENTRIES.setdefault(_entry.variant, _entry)
# what a model trained from scratch is prepared with when its variant has no public weights, chosen by
# the variant's input size (the CIFAR variants: 32); any other size gets torchvision's
UNPUBLISHED_PREPROCESS = (CIFAR_32,)


def default_entry(variant: str) -> WeightEntry | None:
    """The entry of a variant's public weights (`pretrained=True`, 'DEFAULT'), or None (cifar)."""
    return DEFAULT_ENTRIES.get(get_arch(variant).name)


def default_preprocess(variant: str) -> PreprocessSpec:
    """The preprocessing a variant is used with: its public weights', else by its input size."""
    entry = default_entry(variant)
    if entry is not None:
        return entry.preprocess
    size = get_arch(variant).input_size
    return next((spec for spec in UNPUBLISHED_PREPROCESS if spec.crop == size), TORCHVISION.preprocess)


def registry_names() -> tuple[str, ...]:
    """Every accepted name, aliases included, sorted."""
    return tuple(sorted(_BY_NAME))


def is_registry_name(name: str) -> bool:
    """True when `name` (case-insensitive, surrounding spaces ignored) names a known weight set."""
    return isinstance(name, str) and name.strip().lower() in _BY_NAME


def get_entry(name: str) -> WeightEntry:
    """The entry for a registry name or alias (case-insensitive).

    Raises:
        UserInputError: for an unknown name, listing the valid names with a close match.
    """
    try:
        return _BY_NAME[name.strip().lower()]
    except (KeyError, AttributeError):
        raise unknown_name_error("weights name", str(name), _BY_NAME) from None
