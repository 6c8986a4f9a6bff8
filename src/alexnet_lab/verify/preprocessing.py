"""The `preprocessing` check: does the preprocessing a weight file carries score best?

On a labelled class folder it evaluates the weights with the preprocessing bound to them and
with the usual mistakes made on the way to them: channels swapped (RGB/BGR), 0-1 vs 0-255,
ImageNet mean/std vs the Caffe mean vs none, 224 vs 227, squash vs shorter-side resize. When a
mistake scores clearly higher than the bound preprocessing, the file most likely carries the
wrong one: the check FAILs and names the better candidate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET, PreprocessSpec
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK
from alexnet_lab.verify.checks import FAIL, PASS, SKIP, Check

log = logging.getLogger(__name__)

NAME = "preprocessing"
MARGIN = 0.05  # a mistake must beat the bound preprocessing by 5 points of top-1 ...
SIGMAS = 2.0  # ... and by two standard errors of the difference, so small folders do not FAIL by luck
_IMAGENET_SCALE, _CAFFE_SCALE = TORCHVISION_IMAGENET.scale, BVLC_CAFFE.scale


def _in_order(rgb_values: tuple[float, float, float], order: str) -> tuple[float, float, float]:
    return rgb_values if order == "RGB" else rgb_values[::-1]


def candidates(spec: PreprocessSpec, accepts) -> dict[str, PreprocessSpec]:
    """The bound preprocessing and each usual mistake from it that differs from it; `accepts(crop)`
    says whether the model can take an input of that size."""
    other_order = "BGR" if spec.channel_order == "RGB" else "RGB"
    caffe_rgb = BVLC_CAFFE.mean[::-1]  # the Caffe means are listed B, G, R
    found = {
        "bound": spec,
        f"channels {other_order}": replace(spec, channel_order=other_order),
        "scale 0-255" if spec.scale < 0.5 else "scale 0-1": replace(spec, scale=_CAFFE_SCALE if spec.scale < 0.5
                                                                      else _IMAGENET_SCALE),
        "ImageNet mean/std": replace(spec, scale=_IMAGENET_SCALE, std=_in_order(TORCHVISION_IMAGENET.std, spec.channel_order),
                                     mean=_in_order(TORCHVISION_IMAGENET.mean, spec.channel_order)),
        "Caffe mean": replace(spec, scale=_CAFFE_SCALE, mean=_in_order(caffe_rgb, spec.channel_order), std=None),
        "no mean/std": replace(spec, mean=(0.0, 0.0, 0.0), std=None),
    }
    if spec.resize_mode in ("square", "shorter"):
        other = "shorter" if spec.resize_mode == "square" else "square"
        found[f"resize {other}"] = replace(spec, resize_mode=other)
    for crop in (224, 227):
        if crop != spec.crop and spec.crop in (224, 227) and crop <= spec.resize and accepts(crop):
            found[f"crop {crop}"] = replace(spec, crop=crop)
    return {name: candidate for name, candidate in found.items() if name == "bound" or candidate != spec}


def _accepts(bundle: WeightBundle):
    def accepts(crop: int) -> bool:
        try:
            bundle.arch.check_input_size(crop)
        except AlexnetLabError:
            return False
        return True

    return accepts


def score_candidates(bundle: WeightBundle, index, framework: str = DEFAULT_FRAMEWORK, device: str = "auto",
                     cache_dir: str | None = None) -> dict[str, float]:
    """top-1 of the weights on the labelled index under each candidate preprocessing; `cache_dir`:
    the decoded images read from the cache there (data.cache.evaluation_store: the same pixels)."""
    from alexnet_lab.data.cache import evaluation_store
    from alexnet_lab.data.datasets import decode_all
    from alexnet_lab.evaluate.dataset_eval import logits_for_store

    scores, stores = {}, {}
    for name, spec in candidates(bundle.meta.preprocess, _accepts(bundle)).items():
        key = (spec.resize, spec.resize_mode, spec.antialias)  # decode once per resize
        if key not in stores:
            stores[key] = (evaluation_store(index, spec, cache_dir) if cache_dir else decode_all(index, spec))[:2]
        images, labels = stores[key]
        trial = bundle.with_meta(preprocess=spec, input_size=0)
        logits = logits_for_store(trial, images, framework, device=device)
        scores[name] = float(np.mean(logits.argmax(1) == labels))
        log.info("preprocessing %s (%s): top-1 %.4f", name, spec.describe(), scores[name])
    return scores


def verdict(scores: dict[str, float], num_images: int) -> Check:
    """FAIL when the best mistake beats the bound preprocessing by MARGIN and SIGMAS standard errors."""
    bound = scores["bound"]
    rest = {name: score for name, score in scores.items() if name != "bound"}
    best = max(rest, key=rest.__getitem__) if rest else "bound"
    better = rest.get(best, bound)
    spread = math.sqrt(max(bound * (1 - bound) + better * (1 - better), 1e-12) / num_images)
    figures = {"top1": scores, "num_images": num_images, "best_alternative": best}
    if better - bound > max(MARGIN, SIGMAS * spread):
        return Check(NAME, FAIL, f"the bound preprocessing scores {100 * bound:.1f}% top-1 but '{best}' scores "
                     f"{100 * better:.1f}% on {num_images} images: the file likely carries the wrong preprocessing; "
                     f"re-save it with the preprocessing it was trained with", figures)
    return Check(NAME, PASS, f"the bound preprocessing scores {100 * bound:.1f}% top-1 on {num_images} images; the "
                 f"best alternative ('{best}') {100 * better:.1f}%", figures)


def labelled_index(folder):
    """The folder as a labelled index when it holds class sub-folders of images, else None."""
    from pathlib import Path

    from alexnet_lab.data import read_class_folder
    from alexnet_lab.data.walk import FolderWalk

    path = Path(folder)
    if not path.is_dir() or not FolderWalk().subfolders(path):
        return None
    try:
        return read_class_folder(path)
    except AlexnetLabError:
        return None


def check_preprocessing(bundle: WeightBundle, index, framework: str = DEFAULT_FRAMEWORK, device: str = "auto",
                        per_class: int = 50, cache_dir: str | None = None) -> Check:
    """The check on a labelled index (at most `per_class` images of each class are used; `cache_dir`:
    read them from the decoded cache there)."""
    from alexnet_lab.data import align_to
    from alexnet_lab.data.datasets import first_per_class

    try:
        index = align_to(index, bundle.meta.categories)
    except AlexnetLabError as exc:
        return Check(NAME, SKIP, f"the folder's classes do not match the weights' ({exc})")
    index = first_per_class(index, per_class)
    return verdict(score_candidates(bundle, index, framework, device, cache_dir), len(index))
