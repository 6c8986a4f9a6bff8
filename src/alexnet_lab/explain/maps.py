"""Heat maps of what the network looks at: Grad-CAM (a conv layer's channels weighted by their
mean gradient) and saliency (|gradient| at the input), for either framework, over the input as
the network sees it (resized and cropped by the weights' own preprocessing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.explain import INPUT, METHODS, gradcam, peak, saliency, upsample
from alexnet_lab.core.preprocessing import PreprocessSpec, preprocess, resized_crop
from alexnet_lab.core.softmax import softmax
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK, get_backend


@dataclass(frozen=True)
class Explanation:
    """One image's heat map and what it explains.

    Attributes:
        heat: crop x crop map in [0, 1] over the network's input.
        class_index / label / probability: the class explained and its softmax probability.
        peak: (row, column) of the map's maximum, in input pixels.
    """

    heat: np.ndarray
    class_index: int
    label: str
    probability: float
    peak: tuple[int, int]

    def to_json_dict(self) -> dict:
        return {"class_index": self.class_index, "label": self.label, "probability": self.probability,
                "peak": list(self.peak), "size": self.heat.shape[0]}


def cropped_view(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 RGB crop x crop: the image resized and cropped as the network sees it, not normalised
    (core.preprocessing.resized_crop, the very pixels preprocess normalises)."""
    return resized_crop(np.asarray(image, dtype=np.uint8) if np.asarray(image).dtype != np.uint8 else image, spec)


def resolve_class(target: str | int | None, categories: Sequence[str]) -> int | None:
    """--class as an index: a label, an index (as text or int), or None for the top class.

    Raises:
        UserInputError: an index out of range or an unknown label (with a close match).
    """
    if target is None:
        return None
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < len(categories):
            raise UserInputError(f"--class {index} is out of range; the weights have classes 0-{len(categories) - 1}.")
        return index
    if target not in categories:
        raise unknown_name_error("class", str(target), categories)
    return list(categories).index(str(target))


def default_layer(method: str) -> str:
    """Grad-CAM reads the last conv block (conv5); saliency the input."""
    return "conv5" if method == "gradcam" else INPUT


def explain_batch(model, framework: str, batch: np.ndarray, categories: Sequence[str], method: str = "gradcam",
                  layer: str | None = None, target: int | None = None) -> list[Explanation]:
    """Explanations for a preprocessed NHWC batch with a built model (see frameworks.build_for).

    Args:
        target: the class index to explain for every image; None: each image's top class.
    """
    if method not in METHODS:
        raise unknown_name_error("method", method, METHODS)
    layer = layer or default_layer(method)
    if method == "saliency" and layer != INPUT:
        raise UserInputError(f"saliency is the gradient at the input; received --layer {layer}. Drop --layer, or "
                             "use --method gradcam for a layer's map.")
    classes = None if target is None else [target] * len(batch)
    activations, gradients, logits = get_backend(framework).class_gradients(model, batch, layer, classes)
    maps = gradcam(activations, gradients) if method == "gradcam" else saliency(gradients)
    probabilities = softmax(logits)
    chosen = logits.argmax(1) if target is None else np.full(len(batch), target)
    out = []
    for heat, index, row in zip(maps, chosen, probabilities):
        full = upsample(heat, batch.shape[1])
        out.append(Explanation(full, int(index), categories[int(index)], float(row[index]), peak(full)))
    return out


def explain_images(bundle: WeightBundle, images: Sequence[np.ndarray], framework: str = DEFAULT_FRAMEWORK,
                   method: str = "gradcam", layer: str | None = None, target: str | int | None = None,
                   device: str = "auto") -> list[Explanation]:
    """Explanations for uint8 RGB images, preprocessed the way the weights expect."""
    from alexnet_lab.frameworks import build_for

    index = resolve_class(target, bundle.meta.categories)
    batch = np.stack([preprocess(image, bundle.meta.preprocess) for image in images])
    model = build_for(bundle, framework, device)
    return explain_batch(model, framework, batch, bundle.meta.categories, method, layer, index)
