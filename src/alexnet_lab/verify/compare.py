"""Compare two weight sets: per-tensor max |difference| and, kept apart, their metadata.

'against' judges the numbers only: it passes when every tensor of one equals the other's within
the tolerance (0 by default: bit-identical, which is what every lossless conversion gives).
'against-metadata' reports differences in variant, classes or preprocessing as a WARN: the same
numbers with another preprocessing predict differently, but the weights themselves are equal.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.verify.checks import FAIL, PASS, WARN, Check, preview

NAME = "against"


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b| in float64; 0 for identical arrays (NaN where the other has NaN too), inf
    where only one side is NaN/Inf, so a damaged tensor never looks close."""
    if np.array_equal(a, b, equal_nan=True):
        return 0.0
    delta = np.abs(a.astype(np.float64) - b)
    return float(np.nan_to_num(delta, nan=np.inf).max())


def layer_differences(ours: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max |a - b| per tensor present in both with the same shape."""
    return {key: max_abs_diff(value, theirs[key]) for key, value in ours.items()
            if key in theirs and value.shape == theirs[key].shape}


def _layout_mismatch(ours: Mapping[str, np.ndarray], theirs: Mapping[str, np.ndarray]) -> list[str]:
    problems = [f"'{k}' only in WEIGHTS" for k in ours if k not in theirs]
    problems += [f"'{k}' only in the other file" for k in theirs if k not in ours]
    problems += [f"'{k}': {ours[k].shape} vs {theirs[k].shape}"
                 for k in ours if k in theirs and ours[k].shape != theirs[k].shape]
    return problems


def check_against(bundle: WeightBundle, other: WeightBundle, label: str, tolerance: float = 0.0) -> Check:
    """PASS when every tensor matches the other file's within `tolerance` (max |difference|)."""
    diffs = layer_differences(bundle.tensors, other.tensors)
    mismatch = _layout_mismatch(bundle.tensors, other.tensors)
    largest = max(diffs.values(), default=0.0)
    figures = {"against": label, "tolerance": tolerance, "max_abs_diff": largest, "layer_max_abs_diff": diffs}
    if mismatch:
        return Check(NAME, FAIL, f"layouts differ from {label}: {preview(mismatch)}", figures)
    over = [f"{key} {diff:.3g}" for key, diff in diffs.items() if diff > tolerance]
    if over:
        return Check(NAME, FAIL, f"{len(over)} of {len(diffs)} tensors differ from {label} by more than "
                     f"{tolerance:g}: {preview(over)}", figures)
    what = "identical to" if largest == 0 else f"within {tolerance:g} (max {largest:.3g}) of"
    return Check(NAME, PASS, f"all {len(diffs)} tensors {what} {label}", figures)


def check_against_metadata(bundle: WeightBundle, other: WeightBundle, label: str) -> Check:
    """WARN when the variant, class names or preprocessing differ from the other file's."""
    ours, theirs = bundle.meta, other.meta
    differences = []
    if ours.variant != theirs.variant:
        differences.append(f"variant {ours.variant} vs {theirs.variant}")
    if ours.categories != theirs.categories:
        differences.append(f"class names differ ({ours.num_classes} vs {theirs.num_classes} classes)")
    if ours.preprocess != theirs.preprocess:
        differences.append(f"preprocessing '{ours.preprocess.describe()}' vs '{theirs.preprocess.describe()}'")
    figures = {"differences": differences}
    if differences:
        return Check(f"{NAME}-metadata", WARN, "; ".join(differences), figures)
    return Check(f"{NAME}-metadata", PASS, f"same variant, class names and preprocessing as {label}", figures)
