"""The 'digest' and 'fingerprint' checks: does a file still hold what it recorded when written?

Files the project writes carry `tensors_sha256` and `fingerprint` (core.fingerprint). 'digest'
recomputes the sha256 of the canonical tensors: any flipped bit, swapped tensor or re-ordered
fc6 since writing FAILs it. 'fingerprint' feeds the recorded pictures to the models that
actually run the weights (PyTorch and Keras; numpy's reference forward pass when the framework
checks are off) and compares their logits with the recorded ones, to the parity tolerance
(1e-4 x the logit scale): a loader that maps the weights wrongly FAILs it. Files written before
these records existed (or by other tools) SKIP both.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.fingerprint import fingerprint_inputs, parse_fingerprint, reference_logits, tensors_digest
from alexnet_lab.verify.checks import FAIL, PASS, SKIP, Check
from alexnet_lab.verify.parity import RELATIVE_TOLERANCE

DIGEST, FINGERPRINT = "digest", "fingerprint"
NO_RECORD = "the file records no {what} (written before alexnet-lab recorded one, or by another tool)"


def check_digest(bundle: WeightBundle) -> Check:
    """PASS when the tensors' sha256 equals the one recorded in the file."""
    recorded = bundle.meta.tensors_sha256.lower()
    if not recorded:
        return Check(DIGEST, SKIP, NO_RECORD.format(what="tensor digest"))
    actual = tensors_digest(bundle.tensors, bundle.arch, bundle.num_classes)
    figures = {"recorded": recorded, "actual": actual}
    if actual == recorded:
        return Check(DIGEST, PASS, f"tensor sha256 {actual[:16]}... equals the one recorded at writing", figures)
    return Check(DIGEST, FAIL, f"tensor sha256 {actual[:16]}... differs from the recorded {recorded[:16]}...: the "
                 "tensors changed after the file was written (corruption, bit flips, edited or swapped tensors)", figures)


def fingerprint_batch(bundle: WeightBundle) -> np.ndarray | None:
    """The recorded pictures as network input, or None when the file records no fingerprint."""
    return None if parse_fingerprint(bundle.meta.fingerprint) is None else fingerprint_inputs(
        bundle.meta.preprocess, bundle.input_size)


def check_fingerprint(bundle: WeightBundle, computed: Mapping[str, np.ndarray] | None) -> Check:
    """Compare the recorded fingerprint logits with each framework's (`computed`: framework ->
    logits of fingerprint_batch); None computes numpy's reference instead."""
    parsed = parse_fingerprint(bundle.meta.fingerprint)
    if parsed is None:
        return Check(FINGERPRINT, SKIP, NO_RECORD.format(what="fingerprint"))
    size, recorded = parsed
    if size != bundle.input_size:
        return Check(FINGERPRINT, FAIL, f"recorded at input size {size}, but the file's metadata says {bundle.input_size}")
    if computed is None:
        computed = {"numpy": reference_logits(bundle.tensors, bundle.arch, fingerprint_batch(bundle))}
    scale = float(np.abs(recorded).max())
    tolerance = RELATIVE_TOLERANCE * scale
    diffs = {name: _max_diff(recorded, logits) for name, logits in computed.items()}
    figures = {"max_abs_logit_diff": diffs, "tolerance": tolerance, "logit_scale": scale, "images": len(recorded)}
    over = [f"{name} {diff:.3g}" for name, diff in diffs.items() if not diff <= tolerance]
    if over:
        return Check(FINGERPRINT, FAIL, f"logits of the recorded pictures differ from those recorded at writing "
                     f"(max |diff| {', '.join(over)} > {tolerance:.2e}): the model does not compute what was written",
                     figures)
    shown = ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items())
    return Check(FINGERPRINT, PASS, f"{len(recorded)} recorded pictures give the recorded logits (max |diff| {shown}; "
                 f"tolerance {tolerance:.1e})", figures)


def _max_diff(recorded: np.ndarray, logits: np.ndarray) -> float:
    if recorded.shape != logits.shape:
        return float("inf")
    return float(np.nan_to_num(np.abs(recorded.astype(np.float64) - logits), nan=np.inf).max())
