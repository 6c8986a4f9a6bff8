"""Integrity checks on the numbers themselves: NaN/Inf, degenerate tensors, implausible scales.

Each problem is reported by one check only: a tensor with NaN/Inf is left to 'finite', a
constant one to 'degenerate', and 'scale' judges the rest.

Scale thresholds. A layer's weight standard deviation is compared with the He (Kaiming) value
sqrt(2 / fan_in), which is what keeps activations at a stable size through ReLU layers and so is
the natural unit for every layer type (fan_in = in/groups x kH x kW for a conv, `in` for a
dense layer). Common initialisers sit at 0.2-1 x He (PyTorch's default is 0.41 x He, Keras'
Glorot 0.2-1 x He depending on fan_out), and training moves a layer by a few times at most.
  * WARN outside [0.02, 50] x He: unusual, but a file can be legitimate (a head scaled on
    purpose, a layer barely trained) — worth a look, not proof of damage.
  * FAIL below 1e-3 x He or above 150 x He: the layer either passes almost nothing on or blows
    activations up by two orders of magnitude — the signature of weights saved in the wrong
    units or corrupted, not of any training run. The upper bound is 150, not 1e3: a kernel
    scaled 1000x from any common initialiser (>= 0.2 x He) lands at >= 200 x He and must FAIL,
    while a head scaled a few hundred times from PyTorch's default (0.41 x He) stays a WARN.
Biases have no natural unit; only |bias| > 1e3 is flagged (WARN): AlexNet biases stay near 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from alexnet_lab.core.spec import ArchSpec
from alexnet_lab.verify.checks import FAIL, PASS, WARN, Check, preview, worst

WARN_RATIO = (0.02, 50.0)  # x He std, see the module docstring
FAIL_RATIO = (1e-3, 150.0)
BIAS_LIMIT = 1e3


@dataclass(frozen=True)
class TensorStats:
    nan: int
    inf: int
    low: float  # min over finite values (nan when none)
    high: float
    std: float  # float64 standard deviation (nan unless every value is finite)

    @property
    def finite(self) -> bool:
        return self.nan == 0 and self.inf == 0


def _std(flat: np.ndarray) -> float:
    """sqrt(E[x^2] - E[x]^2): a BLAS dot and a mean, no float64 copy of a 150 MB fc6. Its ~1e-4
    relative error is irrelevant to a range check that spans decades; the cancellation it
    suffers for near-constant tensors does not matter either, as those never reach 'scale'."""
    mean = float(flat.mean(dtype=np.float64))
    return math.sqrt(max(float(np.dot(flat, flat)) / flat.size - mean * mean, 0.0))


def tensor_stats(tensors: Mapping[str, np.ndarray]) -> dict[str, TensorStats]:
    """NaN/Inf counts, range and standard deviation of every tensor."""
    stats = {}
    for key, value in tensors.items():
        flat = value.reshape(-1)
        if flat.size and np.isfinite(flat).all():  # the common case: one pass, no counting
            stats[key] = TensorStats(0, 0, float(flat.min()), float(flat.max()), _std(flat))
            continue
        nan, inf = int(np.isnan(flat).sum()), int(np.isinf(flat).sum())
        finite = flat[np.isfinite(flat)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
        stats[key] = TensorStats(nan, inf, low, high, math.nan)
    return stats


def _is_weight(key: str, spec: ArchSpec) -> bool:
    """Conv and dense kernels (not biases, not BatchNorm parameters or statistics)."""
    layer, _, part = key.partition(".")
    return part == "weight" and layer in spec.layer_names


def check_finite(stats: Mapping[str, TensorStats]) -> Check:
    bad = {key: s for key, s in stats.items() if not s.finite}
    figures = {"nonfinite": {key: {"nan": s.nan, "inf": s.inf} for key, s in bad.items()}}
    if not bad:
        return Check("finite", PASS, f"no NaN or Inf in {len(stats)} tensors", figures)
    items = [f"{key}: {s.nan} NaN, {s.inf} Inf" for key, s in bad.items()]
    return Check("finite", FAIL, f"{len(bad)} tensor(s) hold NaN/Inf: {preview(items)}", figures)


def check_degenerate(stats: Mapping[str, TensorStats], spec: ArchSpec) -> Check:
    """FAIL for an all-zero or constant kernel; WARN for a constant bias (normal only untrained)."""
    constant = [key for key, s in stats.items() if s.finite and s.low == s.high]
    problems = [f"{key} is {'all zero' if stats[key].low == 0 else f'constant {stats[key].low:g}'}" for key in constant]
    status = worst(FAIL if _is_weight(key, spec) else WARN for key in constant) if constant else PASS
    figures = {"constant": constant}
    if status == PASS:
        return Check("degenerate", PASS, "no all-zero or constant tensor", figures)
    note = "" if status == FAIL else " (normal only for layers that were never trained)"
    return Check("degenerate", status, f"{preview(problems)}{note}", figures)


def _he_ratio(key: str, shape: tuple[int, ...], s: TensorStats) -> float:
    fan_in = math.prod(shape[1:])  # canonical layout: (out, in/groups, kH, kW) or (out, in)
    return s.std / math.sqrt(2.0 / fan_in)


def check_scale(tensors: Mapping[str, np.ndarray], stats: Mapping[str, TensorStats], spec: ArchSpec) -> Check:
    """Weight std against He's sqrt(2 / fan_in) per layer; huge biases (see module docstring)."""
    ratios, problems, statuses = {}, [], []
    for key, s in stats.items():
        if not s.finite or s.low == s.high:
            continue  # reported by 'finite' / 'degenerate'
        if _is_weight(key, spec):
            ratio = ratios[key.split(".")[0]] = round(_he_ratio(key, tensors[key].shape, s), 4)
            if not FAIL_RATIO[0] <= ratio <= FAIL_RATIO[1]:
                statuses.append(FAIL)
            elif not WARN_RATIO[0] <= ratio <= WARN_RATIO[1]:
                statuses.append(WARN)
            else:
                continue
            problems.append(f"{key} std {s.std:.3g} = {ratio:g} x He")
        elif max(abs(s.low), abs(s.high)) > BIAS_LIMIT:
            statuses.append(WARN)
            problems.append(f"{key} reaches {max(abs(s.low), abs(s.high)):.3g}")
    figures = {"std_over_he": ratios, "warn_range": list(WARN_RATIO), "fail_range": list(FAIL_RATIO)}
    if not problems:
        return Check("scale", PASS, f"weight std within {WARN_RATIO[0]:g}-{WARN_RATIO[1]:g} x He in all {len(ratios)} "
                     "layers judged", figures)
    return Check("scale", worst(statuses), f"outside the plausible range: {preview(problems)}", figures)


def integrity_checks(tensors: Mapping[str, np.ndarray], spec: ArchSpec) -> list[Check]:
    """The finite, degenerate and scale checks, computing each tensor's statistics once."""
    stats = tensor_stats(tensors)
    return [check_finite(stats), check_degenerate(stats, spec), check_scale(tensors, stats, spec)]
