"""Prediction on image files with a WeightBundle: preprocessing and labels come from the weights."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.frameworks import get_backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    rank: int
    index: int
    label: str
    probability: float

    def to_dict(self) -> dict:
        return {"rank": self.rank, "index": self.index, "label": self.label, "probability": self.probability}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row max is subtracted first)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def top_k(probabilities: np.ndarray, categories: Sequence[str], k: int) -> list[list[Prediction]]:
    """The k most probable classes of every row, highest first (ties: lower index first)."""
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [Prediction(rank + 1, int(i), categories[int(i)], float(row[i])) for rank, i in enumerate(idx)]
        for row, idx in zip(probabilities, order)
    ]


def build_for(bundle: WeightBundle, framework: str, device: str = "auto"):
    """A model of the bundle's variant in `framework` on `device`, with the bundle's weights loaded."""
    backend = get_backend(framework)
    size = bundle.meta.input_size or bundle.meta.preprocess.crop
    model = backend.build_model(bundle.meta.variant, bundle.num_classes, input_size=size)
    model = backend.from_canonical(model, bundle.tensors)
    return backend.to_device(model, device)


def logits_for_images(bundle: WeightBundle, images: Sequence[np.ndarray], framework: str = "torch",
                      device: str = "auto") -> np.ndarray:
    """Logits for uint8 RGB images, preprocessed the way the weights expect."""
    if not images:
        raise UserInputError("no images given; pass at least one image file.")
    batch = np.stack([preprocess(image, bundle.meta.preprocess) for image in images])
    model = build_for(bundle, framework, device)
    return get_backend(framework).predict_logits(model, batch)


def predict_images(bundle: WeightBundle, images: Sequence[np.ndarray], framework: str = "torch",
                   k: int = 5, device: str = "auto") -> list[list[Prediction]]:
    """Top-k predictions for each image."""
    if k < 1:
        raise UserInputError(f"--top must be at least 1; received {k}.")
    return top_k(softmax(logits_for_images(bundle, images, framework, device)), bundle.meta.categories, k)
