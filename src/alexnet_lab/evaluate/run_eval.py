"""Evaluate weights on a data set, framework-neutrally: decode once, normalise with the weights'
own preprocessing, and run the chosen framework's predict_logits in chunks."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError

log = logging.getLogger(__name__)


def normalised_batch(images: np.ndarray, crop: int, norm) -> np.ndarray:
    """uint8 N x S x S x 3 store slice -> float32 N x crop x crop x 3 network input."""
    from alexnet_lab.train.datasets import eval_view

    scale, offset, bgr = norm
    views = np.stack([eval_view(image, crop) for image in images])
    if bgr:
        views = views[..., ::-1]
    return (views.astype(np.float32) * scale + offset).astype(np.float32)


def logits_for_store(bundle: WeightBundle, images: np.ndarray, framework: str = "torch", chunk: int = 256,
                     progress: Callable[[int], None] | None = None, device: str = "auto") -> np.ndarray:
    """Logits of the bundle's model for every image of a uint8 store."""
    from alexnet_lab.frameworks import get_backend
    from alexnet_lab.inference import build_for
    from alexnet_lab.train.datasets import normalisation

    backend = get_backend(framework)
    model = build_for(bundle, framework, device)
    norm = normalisation(bundle.meta.preprocess)
    crop = bundle.meta.input_size or bundle.meta.preprocess.crop
    out = []
    for start in range(0, len(images), chunk):
        batch = normalised_batch(images[start : start + chunk], crop, norm)
        out.append(backend.predict_logits(model, batch, batch_size=min(chunk, 128)))
        if progress is not None:
            progress(len(batch))
    return np.concatenate(out)


def pick_split(found: dict, split: str | None, data: str) -> tuple[str, object]:
    """The split to evaluate: the one asked for, else test, else val, else all."""
    if split is not None:
        if split not in found:
            raise UserInputError(f"--split {split}: '{data}' has splits {', '.join(sorted(found))}.")
        return split, found[split]
    for name in ("test", "val", "all"):
        if name in found:
            return name, found[name]
    return "train", found["train"]


def evaluate_source(source: str, data: str, framework: str = "torch", split: str | None = None, seed: int = 1,
                    synthetic_per_class: int = 100, strict: bool = False, progress=None, device: str = "auto",
                    data_dir: str | None = None):
    """Evaluate weights (file, registry name or run folder) on --data; returns (EvalResult, split name)."""
    from alexnet_lab.data import align_to
    from alexnet_lab.evaluate.metrics import evaluate_logits
    from alexnet_lab.train.datasets import decode_all, read_source
    from alexnet_lab.weights import load_weights

    bundle = load_weights(source)
    # synthetic: another seed than training's default 0, so images the model has not seen
    found = read_source(data, data_dir, seed, synthetic_per_class)
    name, index = pick_split(found, split, data)
    index = align_to(index, bundle.meta.categories)
    images, labels, bad = decode_all(index, bundle.meta.preprocess, strict, progress=progress)
    if bad:
        log.warning("skipped %d unreadable image(s), e.g. %s", len(bad), bad[0])
    logits = logits_for_store(bundle, images, framework, device=device)
    return evaluate_logits(logits, labels, bundle.meta.categories), name
