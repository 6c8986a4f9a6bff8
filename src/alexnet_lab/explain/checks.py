"""Checks that a heat map means something (Adebayo et al. 2018, "Sanity checks for saliency
maps"; the pointing game of Zhang et al. 2016):

- model randomisation: re-initialise the top layers and the maps must change (low rank
  correlation with the trained model's maps); a method whose maps survive it explains the
  image, not the model;
- localisation: on images whose object position is recorded, the map's peak falls inside the
  object's box far more often than a random point would (chance = the box's share of the image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.explain import spearman

TOP_LAYERS = ("fc8", "fc7", "fc6")  # re-initialised from the top, as the cascading test does


def randomised(bundle: WeightBundle, layers: Sequence[str] = TOP_LAYERS, seed: int = 0) -> WeightBundle:
    """The bundle with `layers` re-drawn as PyTorch initialises them (weights and biases uniform
    in +-1/sqrt(fan_in)), seeded; numpy only."""
    rng = np.random.default_rng(seed)
    tensors = dict(bundle.tensors)
    for name in layers:
        weight = tensors[f"{name}.weight"]
        bound = 1.0 / np.sqrt(np.prod(weight.shape[1:]))
        for key in (f"{name}.weight", f"{name}.bias"):
            tensors[key] = rng.uniform(-bound, bound, tensors[key].shape).astype(np.float32)
    return WeightBundle(tensors, bundle.meta)


def rank_correlations(maps: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (N x H x W each)."""
    return np.array([spearman(a, b) for a, b in zip(maps, others)])


@dataclass(frozen=True)
class Localisation:
    """The pointing game's result: share of peaks inside the object's box, and chance."""

    share: float  # of the maps scored, the share whose peak lies in the box
    chance: float  # mean share of the image the boxes cover: a uniformly random peak's hit rate
    scored: int


def pointing_game(peaks: Sequence[tuple[int, int]], boxes: Sequence[tuple[int, int, int, int]],
                  size: int) -> Localisation:
    """Score peaks (row, col) against boxes (top, left, bottom, right; exclusive ends)."""
    hits = [top <= r < bottom and left <= c < right for (r, c), (top, left, bottom, right) in zip(peaks, boxes)]
    areas = [(bottom - top) * (right - left) / (size * size) for top, left, bottom, right in boxes]
    return Localisation(float(np.mean(hits)) if hits else 0.0, float(np.mean(areas)) if areas else 0.0, len(hits))
