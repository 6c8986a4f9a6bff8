"""`alexnet verify`: run every check on one weight source and collect a VerifyReport.

Order: metadata, structure, finite, degenerate, scale, digest, hash, framework-parity, fingerprint, against,
against-metadata, and preprocessing when --images is a labelled class folder, or reproduce when
it is imagenet-val:PATH (verify.reproduce).
A file whose metadata the validator refuses (core.bundle.check_meta, PreprocessSpec) gets a FAILed
metadata check with its reason and the rest SKIP; a file whose shapes fit no variant gets a FAILed
structure check and the rest SKIP; a file that
cannot be read at all (missing, truncated, unsafe) raises, like every other command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, LayoutError, UserInputError
from alexnet_lab.core.metadata import MetadataError
from alexnet_lab.core.preprocessing import preprocess_batch
from alexnet_lab.frameworks.registry import NAMES
from alexnet_lab.verify.checks import FAIL, NOT_FINITE, PASS, SKIP, Check, VerifyReport, skipped
from alexnet_lab.verify.compare import check_against, check_against_metadata
from alexnet_lab.verify.integrity import integrity_checks
from alexnet_lab.verify.parity import NAME as PARITY
from alexnet_lab.verify.parity import both_frameworks, folder_images, generated_images, image_files, parity_check
from alexnet_lab.verify.preprocessing import NAME as PREPROCESSING
from alexnet_lab.verify.preprocessing import check_preprocessing, labelled_index
from alexnet_lab.verify.provenance import check_hash
from alexnet_lab.verify.records import DIGEST, FINGERPRINT, check_digest, check_fingerprint, fingerprint_batch
from alexnet_lab.verify.reproduce import check_reproduce, split_images
from alexnet_lab.verify.structure import check_structure, structure_failure
from alexnet_lab.weights.registry import WeightEntry

log = logging.getLogger(__name__)

METADATA = "metadata"
AFTER_STRUCTURE = ("finite", "degenerate", "scale", DIGEST, "hash", PARITY, FINGERPRINT)


@dataclass(frozen=True)
class VerifyOptions:
    """What `alexnet verify` checks besides the file itself (one field per CLI flag).

    Attributes:
        against: another weight source to compare with, tensor by tensor.
        images: folder of images for the framework-parity check; None: generated pictures. A
            labelled class folder (one sub-folder per class) also runs the `preprocessing` check.
        framework_parity: run PyTorch and Keras on the images and compare their logits.
        tolerance: largest max |difference| per tensor `against` accepts (0: bit-identical).
        num_images: how many pictures to generate when `images` is None.
        cache_dir: the `preprocessing` check reads the labelled folder's decoded images from a
            cache there (data.cache.evaluation_store: the same pixels as the files).
    """

    against: str | None = None
    images: str | None = None
    framework_parity: bool = True
    tolerance: float = 0.0
    num_images: int = 4
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.tolerance >= 0:  # also refuses NaN
            raise UserInputError(f"--tolerance must be >= 0; received {self.tolerance}.")
        if self.num_images < 1:
            raise UserInputError(f"the number of generated images must be at least 1; received {self.num_images}.")


def _framework_checks(bundle: WeightBundle, options: VerifyOptions, finite: bool) -> list[Check]:
    """framework-parity and fingerprint: both need the models run, so each model is built once."""
    if not finite:
        reason = f"{NOT_FINITE}; logits would be meaningless"
        return [Check(PARITY, SKIP, reason), Check(FINGERPRINT, SKIP, reason)]
    if not options.framework_parity:  # the fingerprint is then checked with numpy's forward pass
        return [Check(PARITY, SKIP, "turned off (--no-framework-parity)"), check_fingerprint(bundle, None)]
    images = _parity_images(options)
    batches = {"images": preprocess_batch(images, bundle.meta.preprocess)}
    recorded = fingerprint_batch(bundle)
    if recorded is not None:
        batches[FINGERPRINT] = recorded
    try:
        logits, processes = both_frameworks(bundle, batches)
    except ImportError as exc:
        return [Check(PARITY, SKIP, f"a framework is not installed ({exc}); install torch and keras to run it"),
                check_fingerprint(bundle, None)]
    except AlexnetLabError as exc:  # a worker crashed or hung: parity is not established
        return [Check(PARITY, FAIL, f"could not compute the logits: {exc}"), check_fingerprint(bundle, None)]
    computed = {fw: found[FINGERPRINT] for fw, found in logits.items()} if recorded is not None else None
    first, second = (logits[name]["images"] for name in NAMES)  # the registry's two frameworks
    return [parity_check(first, second, processes),
            check_fingerprint(bundle, computed)]


def _parity_images(options: VerifyOptions) -> list:
    """The parity check's images: the folder's, the first of a labelled folder's, or generated ones."""
    if not options.images:
        return generated_images(options.num_images)
    labelled = labelled_index(options.images)
    if labelled is None:
        return folder_images(options.images)
    from alexnet_lab.data.datasets import load_pixels

    return [load_pixels(sample.path) for sample in labelled.samples[: options.num_images]]


def _preprocessing(bundle: WeightBundle, options: VerifyOptions, finite: bool) -> list[Check]:
    index = labelled_index(options.images) if options.images else None
    if index is None:
        return []
    if not finite:
        return [Check(PREPROCESSING, SKIP, NOT_FINITE)]
    return [check_preprocessing(bundle, index, cache_dir=options.cache_dir)]


def _against(bundle: WeightBundle, options: VerifyOptions) -> list[Check]:
    from alexnet_lab.weights.files import load_weights

    if options.against is None:
        return []
    other = load_weights(options.against)
    return [check_against(bundle, other, options.against, options.tolerance),
            check_against_metadata(bundle, other, options.against)]


def metadata_check(bundle: WeightBundle) -> Check:
    """PASS: the loaded metadata passed the validator (a refusal never gets a bundle; see run_verify)."""
    meta = bundle.meta
    return Check(METADATA, PASS, f"{meta.num_classes} unique class names; {meta.preprocess.describe()}",
                 {"num_classes": meta.num_classes})


def run_verify(weights: str | os.PathLike[str], options: VerifyOptions = VerifyOptions(),
               entries: Iterable[WeightEntry] | None = None) -> VerifyReport:
    """Run every check on `weights` (registry name, file or run folder).

    Args:
        weights: what to verify.
        options: the optional checks (see :class:`VerifyOptions`).
        entries: registry entries for the hash check; the built-in registry when None.

    Raises:
        AlexnetLabError: `weights`, `options.against` or `options.images` cannot be read.
    """
    from alexnet_lab.weights.files import load_weights

    options, imagenet_val = split_images(options)  # imagenet-val:PATH runs `reproduce`, not the image checks
    if options.images and options.framework_parity and labelled_index(options.images) is None:
        image_files(options.images)  # a bad folder fails before any heavy work
    later = AFTER_STRUCTURE + (("against",) if options.against else ())
    try:
        bundle = load_weights(weights)
    except MetadataError as exc:  # a metadata problem is reported as one, not raised
        rest = skipped(("structure", *later), "the metadata is not sane (see 'metadata')")
        return VerifyReport(str(weights), (Check(METADATA, FAIL, str(exc)), *rest))
    except LayoutError as exc:
        rest = skipped(later, "the weights do not fit any variant")
        return VerifyReport(str(weights), (structure_failure(exc), *rest))
    integrity = integrity_checks(bundle.tensors, bundle.arch)  # finite, degenerate, scale
    finite = integrity[0].status != FAIL
    checks = [metadata_check(bundle), check_structure(bundle), *integrity, check_digest(bundle),
              check_hash(bundle, weights, entries), *_framework_checks(bundle, options, finite), *_against(bundle, options),
              *_preprocessing(bundle, options, finite), *check_reproduce(bundle, str(weights), imagenet_val, finite)]
    for check in checks:
        log.info("verify %s: %s %s", check.name, check.status, check.detail)
    return VerifyReport(str(weights), tuple(checks))

