"""Does this copy reproduce the published accuracy? Measured vs published top-1/top-5 on ImageNet.

The registry records each public weight's published figures and their protocol
(WeightEntry.metrics, metrics_crops, metrics_note, preprocess). A measurement on n images is a
binomial estimate, so it carries a Wilson 95% interval for n; the verdict is REPRODUCED when
both published figures lie inside their intervals, else NOT REPRODUCED with what to check. Weights
with no published figures get no verdict. Pure functions: no I/O, no framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from alexnet_lab.core.bundle import ModelMeta
from alexnet_lab.weights.registry import ENTRIES, WeightEntry, get_entry, is_registry_name

Z95 = NormalDist().inv_cdf(0.975)  # the standard normal quantile that bounds a two-sided 95 percent interval
REPRODUCED, NOT_REPRODUCED = "REPRODUCED", "NOT REPRODUCED"
FIGURES = (("top1", "acc@1"), ("top5", "acc@5"))  # EvalResult field, registry metric name


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (successes out of n), as fractions.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes.

    Raises:
        ValueError: n < 1 or successes outside 0..n (a programming error).
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n and n >= 1; received successes={successes}, n={n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def published_entry(meta: ModelMeta, weights: str = "") -> WeightEntry | None:
    """The registry entry whose published figures apply to these weights, or None.

    A registry name, a file the project wrote from registry weights (its metadata's `source`), or
    the registry's own file (its sha256 prefix) qualifies, when variant and classes still match.
    """
    entry = get_entry(weights) if is_registry_name(weights) else None
    if entry is None and is_registry_name(meta.source):
        entry = get_entry(meta.source)
    if entry is None:
        entry = next((e for e in ENTRIES.values()
                      if e.expected_hash and meta.source_sha256.startswith(e.expected_hash)), None)
    if entry is None or entry.variant != meta.variant or tuple(meta.categories) != entry.category_names:
        return None
    return entry if entry.metrics else None


@dataclass(frozen=True)
class Reproduce:
    """Measured vs published figures (fractions) and the verdict; verdict None: nothing published."""

    weights: str
    num_images: int
    measured: dict[str, float]
    published: dict[str, float]
    interval: dict[str, tuple[float, float]]
    verdict: str | None
    check: tuple[str, ...] = ()  # what to look at when NOT REPRODUCED
    note: str = ""  # the published figures' protocol, or why there is no verdict

    def to_json_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "num_images": self.num_images, "measured": self.measured,
                "published": self.published, "interval": {k: list(v) for k, v in self.interval.items()},
                "confidence": 0.95, "verdict": self.verdict, "check": list(self.check), "note": self.note}

    def lines(self) -> list[str]:
        """The verdict as a person reads it, a line per figure then the verdict."""
        if self.verdict is None:
            return [f"reproduce: no verdict: {self.note}"]
        rows = [f"{name:5s} measured {100 * self.measured[name]:6.2f}%  95% interval "
                f"[{100 * self.interval[name][0]:.2f}, {100 * self.interval[name][1]:.2f}]  published "
                f"{100 * self.published[name]:.2f}%" for name in self.measured]
        verdict = f"{self.verdict} ({self.weights}, {self.num_images} images; published: {self.note})"
        return [*rows, verdict, *(f"  check: {item}" for item in self.check)]


def _to_check(entry: WeightEntry, meta: ModelMeta, layout: str, crops: int, precision: str,
              measured_top1: float) -> tuple[str, ...]:
    items = []
    if measured_top1 < 0.05:
        items.append(f"the labels: top-1 near chance means the ground truth does not match the images "
                     f"(layout {layout}; is the devkit / CSV the one of these images?)")
    if crops != entry.metrics_crops:
        items.append(f"--crops {crops}: the published figures use {entry.metrics_crops} view(s) per image")
    if precision != "fp32":
        items.append(f"--precision {precision}: the published figures are fp32")
    if meta.preprocess != entry.preprocess:
        items.append(f"the preprocessing: the weights carry '{meta.preprocess.describe()}' but the published figures "
                     f"used '{entry.preprocess.describe()}'; re-create the file with the published one")
    else:
        items.append(f"the preprocessing: the weights carry the published protocol ({entry.preprocess.name}); "
                     "`alexnet verify W --images CLASS_FOLDER` scores it against the usual mistakes")
    items.append(f"the layout ({layout}): every image's WordNet ID and the set's completeness")
    items.append("the file: `alexnet verify` (hash, fingerprint, framework parity)")
    return tuple(items)


def reproduce_verdict(result, meta: ModelMeta, weights: str = "", layout: str = "", crops: int = 1,
                      precision: str = "fp32") -> Reproduce:
    """Measured (an EvalResult on ImageNet validation) vs the published figures of the weights."""
    entry = published_entry(meta, weights)
    n = result.num_images
    measured = {name: float(getattr(result, name)) for name, _ in FIGURES}
    if entry is None:
        note = ("these weights have no published figures (not a registry weight set, nor a file written from one "
                "with its classes unchanged)")
        return Reproduce(weights, n, measured, {}, {}, None, note=note)
    published = {name: entry.metrics_dict[key] / 100 for name, key in FIGURES if key in entry.metrics_dict}
    measured = {name: value for name, value in measured.items() if name in published}
    interval = {name: wilson_interval(round(value * n), n) for name, value in measured.items()}
    inside = all(low <= published[name] <= high for name, (low, high) in interval.items())
    check = () if inside else _to_check(entry, meta, layout, crops, precision, measured.get("top1", 1.0))
    return Reproduce(entry.name, n, measured, published, interval, REPRODUCED if inside else NOT_REPRODUCED, check,
                     entry.metrics_note)
