"""Evaluate weights on a data set, framework-neutrally: decode once, normalise with the weights'
own preprocessing, and run the chosen framework's predict_logits in chunks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import normalised
from alexnet_lab.core.softmax import softmax
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK

log = logging.getLogger(__name__)


CROPS = (1, 2, 5, 10)  # centre; centre + its mirror (flip averaging); four corners + centre; those five + mirrors


def crop_views(image: np.ndarray, crop: int, crops: int = 1) -> list[np.ndarray]:
    """The evaluation views of one stored S x S image: the centre crop (1), it and its mirror image
    (2), the four corners and the centre (5), or those and their horizontal flips (10), as in the
    2012 paper's test."""
    from alexnet_lab.data.datasets import eval_view

    if crops not in CROPS:
        raise UserInputError(f"--crops takes {', '.join(map(str, CROPS))}; received {crops}.")
    centre = eval_view(image, crop)
    if crops <= 2:
        return [centre, centre[:, ::-1]][:crops]
    far = image.shape[0] - crop, image.shape[1] - crop
    corners = [image[top : top + crop, left : left + crop] for top in (0, far[0]) for left in (0, far[1])]
    views = [*corners, centre]
    return views + [view[:, ::-1] for view in views] if crops == 10 else views


def normalised_batch(images: np.ndarray, crop: int, norm, view: int = 0, crops: int = 1) -> np.ndarray:
    """uint8 N x S x S x 3 store slice -> float32 N x crop x crop x 3 network input: each image's
    `view`-th of its `crops` evaluation views (crop_views)."""
    return normalised(np.stack([crop_views(image, crop, crops)[view] for image in images]), *norm)


def network_input(bundle: WeightBundle, images: np.ndarray, view: int = 0, crops: int = 1) -> np.ndarray:
    """uint8 store slice -> the float32 input the bundle's model expects (its crop and normalisation)."""
    from alexnet_lab.data.datasets import normalisation

    crop = bundle.meta.input_size or bundle.meta.preprocess.crop
    return normalised_batch(images, crop, normalisation(bundle.meta.preprocess), view, crops)


def average_views(view_logits: Iterable[np.ndarray]) -> np.ndarray:
    """Log of the softmax averaged over views (softmax of it gives back the average): how --crops
    and a training run's --eval-flip combine the logits of an image's views."""
    total, count = 0.0, 0
    for logits in view_logits:
        total, count = total + softmax(logits), count + 1  # the one softmax, in float64
    return np.log(np.maximum(total / count, 1e-30)).astype(np.float32)


def _averaged(logits_of, bundle: WeightBundle, images: np.ndarray, crops: int, batch_size: int) -> np.ndarray:
    if crops == 1:
        return logits_of(network_input(bundle, images), batch_size)
    return average_views(logits_of(network_input(bundle, images, view, crops), batch_size) for view in range(crops))


def _warn_stored_at_crop(bundle: WeightBundle, images: np.ndarray, crops: int) -> None:
    if crops > 2 and images.shape[1] == bundle.input_size:
        log.warning("--crops %d: the stored images are already %dx%d, so the corner crops equal the centre; "
                    "only the flips add views", crops, images.shape[1], images.shape[2])


def logits_for_store(bundle: WeightBundle, images: np.ndarray, framework: str = DEFAULT_FRAMEWORK, chunk: int = 256,
                     progress: Callable[[int], None] | None = None, device: str = "auto", precision: str = "fp32",
                     calibration: np.ndarray | None = None, crops: int = 1, model=None) -> np.ndarray:
    """Logits of the bundle's model for every image of a uint8 store (int8: see inference_model);
    with crops 2, 5 or 10, the log of the softmax averaged over the crops (crop_views). `model`: an
    inference_model already built for the bundle (a caller with several stores builds it once)."""
    from alexnet_lab.inference.predict import inference_model

    crop_views(images[0], bundle.input_size, crops)  # a bad --crops fails before the model is built
    if model is None:  # a caller passing its model has warned once already
        _warn_stored_at_crop(bundle, images, crops)
    logits_of = model or inference_model(bundle, framework, device, precision, calibration)
    out = []
    for start in range(0, len(images), chunk):
        out.append(_averaged(logits_of, bundle, images[start : start + chunk], crops, min(chunk, 128)))
        if progress is not None:
            progress(len(out[-1]))
    return np.concatenate(out)


def calibration_draw(length: int, count: int, seed: int = 0) -> list[int]:
    """Positions of `count` of `length` images drawn at random (seeded), in order.

    Raises:
        UserInputError: count below 1, or no images to draw from.
    """
    if count < 1:
        raise UserInputError(f"--calibration-images must be at least 1; received {count}.")
    if length == 0:
        raise UserInputError("the calibration data has no images; pass a folder of images with --calibration.")
    return [int(i) for i in np.sort(np.random.default_rng(seed).permutation(length)[:count])]


def calibration_batch(bundle: WeightBundle, index, count: int = 256, seed: int = 0) -> np.ndarray:
    """`count` images drawn from a dataset index (calibration_draw), decoded and preprocessed the way
    the weights expect: the network input that sets int8 activation ranges. Labels are not used."""
    from alexnet_lab.data.datasets import decode_all

    images, _, bad = decode_all(index.subset(calibration_draw(len(index), count, seed)), bundle.meta.preprocess)
    if bad:
        log.warning("calibration: skipped %d unreadable image(s), e.g. %s", len(bad), bad[0])
    return network_input(bundle, images)


def read_calibration(source: str, data_dir: str | None = None):
    """The images of a --calibration source: its train split if it has one, else all of it."""
    from alexnet_lab.data.datasets import read_source

    found = read_source(source, data_dir)
    return next((found[name] for name in ("train", "all") if name in found), next(iter(found.values())))


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


def evaluate_source(source: str, data: str, framework: str = DEFAULT_FRAMEWORK, split: str | None = None, seed: int = 1,
                    synthetic_per_class: int = 100, strict: bool = False, progress=None, device: str = "auto",
                    data_dir: str | None = None, precision: str = "fp32", calibration: str | None = None,
                    calibration_images: int = 256, crops: int = 1, cache_dir: str | None = None):
    """Evaluate weights (file, registry name or run folder) on --data; returns (EvalResult, split name).

    int8 calibrates on `calibration` (a data source) when given, else on the train split of --data
    when it has one and another split is evaluated, else on the evaluated images themselves (their
    labels are never used; a warning says so). crops: 1, 2, 5 or 10 views averaged (crop_views).
    cache_dir: read the images from the decoded cache there (evaluate_index).
    `--data imagenet-val` goes through evaluate_imagenet_val instead."""
    from alexnet_lab.data import align_to
    from alexnet_lab.data.datasets import read_source
    from alexnet_lab.inference.predict import check_precision
    from alexnet_lab.weights.files import load_weights

    check_precision(precision, framework, device)
    bundle = load_weights(source)
    # synthetic: another seed than training's default 0, so images the model has not seen
    found = read_source(data, data_dir, seed, synthetic_per_class)
    name, index = pick_split(found, split, data)
    index.check_complete(strict)  # --strict: shards that lost samples are refused, not warned about
    index = align_to(index, bundle.meta.categories)
    train = found["train"] if "train" in found and name != "train" else None
    return evaluate_index(bundle, index, framework, strict=strict, progress=progress, device=device,
                          data_dir=data_dir, precision=precision, calibration=calibration,
                          calibration_images=calibration_images, crops=crops, train=train, cache_dir=cache_dir), name


EVAL_CHUNK = 2048  # images decoded at a time: about 0.4 GB at 256x256, so 50,000 images never sit in memory at once


def _chunks(index, size: int):
    for start in range(0, len(index), size):
        yield index.subset(range(start, min(start + size, len(index))))


def _decoded_chunks(index, spec, strict: bool, progress, cache_dir: str | None):
    """(uint8 images, labels, skipped paths) of `index`, EVAL_CHUNK samples at a time: decoded from
    the files (data.datasets.decode_all), or read from the decoded cache in `cache_dir`, whose raw
    full-size store gives the same pixels (data.cache.evaluation_store). A chunk without a readable
    image comes back as (None, None, its paths)."""
    from alexnet_lab.data.datasets import decode_all

    if cache_dir is None:
        for part in _chunks(index, EVAL_CHUNK):
            try:
                yield decode_all(part, spec, strict, progress=progress)
            except UserInputError:  # no readable image in this chunk (strict raised ImageReadError instead)
                yield None, None, part.paths
        return
    from alexnet_lab.data.cache import evaluation_store

    images, labels, skipped = evaluation_store(index, spec, cache_dir, strict, progress)
    unreadable = set(skipped)
    readable = np.array([s.path not in unreadable for s in index.samples], bool)
    rows = np.cumsum(readable) - 1  # store row of each readable sample: the store keeps them in index order
    for start in range(0, len(index), EVAL_CHUNK):
        part = slice(start, start + EVAL_CHUNK)
        mine, bad = rows[part][readable[part]], [s.path for s in index.samples[part] if s.path in unreadable]
        yield (images[mine], labels[mine], bad) if len(mine) else (None, None, bad)


def evaluate_index(bundle: WeightBundle, index, framework: str = DEFAULT_FRAMEWORK, *, strict: bool = False,
                   progress=None, device: str = "auto", data_dir: str | None = None, precision: str = "fp32",
                   calibration: str | None = None, calibration_images: int = 256, crops: int = 1, train=None,
                   cache_dir: str | None = None):
    """EvalResult of the bundle on a DatasetIndex already labelled into its outputs, decoded
    EVAL_CHUNK images at a time with the model built once; `train`: the data's train split, int8's
    calibration images when no `calibration` source is given (else drawn from `index`). `cache_dir`:
    read the decoded images from the cache there (built first if missing): the same predictions."""
    from alexnet_lab.evaluate.metrics import evaluate_logits
    from alexnet_lab.inference.predict import inference_model

    calibration_set = None
    if precision == "int8" and calibration is not None:
        calibration_set = calibration_batch(bundle, read_calibration(calibration, data_dir), calibration_images)
    elif precision == "int8" and train is not None:
        calibration_set = calibration_batch(bundle, train, calibration_images)
    elif precision == "int8":
        log.warning("int8: calibrating on the evaluated images (labels unused); pass --calibration FOLDER to "
                    "calibrate on separate images")
        calibration_set = calibration_batch(bundle, index, calibration_images)
    model, logits, labels, bad = None, [], [], []
    for images, part_labels, part_bad in _decoded_chunks(index, bundle.meta.preprocess, strict, progress, cache_dir):
        if images is None:
            bad.extend(part_bad)
            continue
        if model is None:
            crop_views(images[0], bundle.input_size, crops)  # a bad --crops fails before the model is built
            _warn_stored_at_crop(bundle, images, crops)
            model = inference_model(bundle, framework, device, precision, calibration_set)
        logits.append(logits_for_store(bundle, images, framework, device=device, precision=precision, crops=crops,
                                       model=model))
        labels.append(part_labels)
        bad.extend(part_bad)
    if not logits:
        raise UserInputError(f"no readable images among {len(index)} files; check the data folder.")
    if bad:
        log.warning("skipped %d unreadable image(s), e.g. %s", len(bad), bad[0])
    return evaluate_logits(np.concatenate(logits), np.concatenate(labels), bundle.meta.categories)


def evaluate_imagenet_val(bundle: WeightBundle, data_dir: str | None, weights: str = "", limit_per_class: int = 0,
                          framework: str = DEFAULT_FRAMEWORK, **options):
    """The bundle on the ImageNet validation set under data_dir (data.imagenet_val, labelled by
    WordNet ID) and the reproduce verdict against its published figures; returns (EvalResult,
    ValSet, Reproduce). `options`: evaluate_index's keywords."""
    from alexnet_lab.data.imagenet_val import read_imagenet_val
    from alexnet_lab.evaluate.reproduce import reproduce_verdict
    from alexnet_lab.inference.predict import check_precision

    check_precision(options.get("precision", "fp32"), framework, options.get("device", "auto"))
    val = read_imagenet_val(data_dir, bundle.meta.class_ids, limit_per_class)
    log.info("imagenet-val: layout %s, %d images, labels from %s", val.layout, len(val.index), val.labels_from)
    result = evaluate_index(bundle, val.index, framework, data_dir=None, **options)
    verdict = reproduce_verdict(result, bundle.meta, weights, val.layout, options.get("crops", 1),
                                options.get("precision", "fp32"))
    return result, val, verdict
