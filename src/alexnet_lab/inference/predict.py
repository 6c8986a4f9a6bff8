"""Prediction on image files with a WeightBundle: preprocessing and labels come from the weights."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.precision import INFERENCE_PRECISIONS
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.core.softmax import softmax as _softmax
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK, build_for, get_backend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    rank: int
    index: int
    label: str
    probability: float
    wnid: str = ""  # the class's WordNet ID where the weights know their IDs (ModelMeta.class_ids)

    def to_dict(self) -> dict:
        """predict --json's entry: `wnid` beside `label` only where the weights know their IDs."""
        label = {"label": self.label, "wnid": self.wnid} if self.wnid else {"label": self.label}
        return {"rank": self.rank, "index": self.index, **label, "probability": self.probability}


def __getattr__(name: str):
    if name == "softmax":  # moved to core.softmax, its one home
        import warnings

        warnings.warn("alexnet_lab.inference.predict.softmax moved to alexnet_lab.core.softmax.softmax",
                      DeprecationWarning, stacklevel=2)
        return _softmax
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def top_k(probabilities: np.ndarray, categories: Sequence[str], k: int,
          class_ids: Sequence[str] = ()) -> list[list[Prediction]]:
    """The k most probable classes of every row, highest first (ties: lower index first);
    `class_ids` (WordNet IDs in output order, or none) fill each prediction's wnid."""
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    wnid = (lambda i: class_ids[i]) if class_ids else (lambda i: "")
    return [
        [Prediction(rank + 1, int(i), categories[int(i)], float(row[i]), wnid(int(i))) for rank, i in enumerate(idx)]
        for row, idx in zip(probabilities, order)
    ]


PRECISIONS = INFERENCE_PRECISIONS


def check_precision(precision: str, framework: str, device: str) -> None:
    """Refuse a precision this framework or device cannot run, before any image is decoded.

    Raises:
        UserInputError: an unknown precision, int8 on a GPU, or int8 with Keras off TensorFlow.
    """
    if precision not in PRECISIONS:
        raise UserInputError(f"--precision takes {', '.join(PRECISIONS)}; received '{precision}'.")
    if precision == "int8" and device not in ("auto", "cpu"):
        raise UserInputError(f"--precision int8 runs on the CPU's int8 kernels; pass --device cpu, not '{device}'.")
    if precision == "int8":
        get_backend(framework).check_int8()


def resolve_precision(precision: str, framework: str, device: str = "auto") -> str:
    """The inference precision that runs: `auto` becomes bf16 where the device computes it natively
    (the backend's auto_inference_precision), else fp32; the others are returned as they are."""
    check_precision(precision, framework, device)
    if precision != "auto":
        return precision
    return get_backend(framework).auto_inference_precision(device)


def inference_model(bundle: WeightBundle, framework: str = DEFAULT_FRAMEWORK, device: str = "auto", precision: str = "fp32",
                    calibration: np.ndarray | None = None) -> Callable[[np.ndarray, int], np.ndarray]:
    """A function (preprocessed N x H x W x 3 batch, batch size) -> float32 logits for the bundle.

    Args:
        precision: fp32 (exact), bf16 (the weights held in bfloat16; native and faster on CPUs
            with AVX512-BF16 or AMX and on recent GPUs, emulated and slower elsewhere), auto (bf16
            where native, else fp32), or int8 (on the CPU, post-training quantized: PyTorch's int8
            kernels, or TensorFlow Lite's for Keras).
        calibration: preprocessed images that set the int8 activation ranges; needed for int8.

    Raises:
        UserInputError: an unknown precision, int8 on a GPU, with Keras off TensorFlow or without
            calibration images (that last from quantize_int8).
    """
    precision = resolve_precision(precision, framework, device)
    backend = get_backend(framework)
    if precision in ("fp32", "bf16"):
        model = backend.cast_for_inference(build_for(bundle, framework, device), precision)
        return lambda batch, batch_size=32: backend.predict_logits(model, batch, batch_size=batch_size)
    quantized = backend.quantize_int8(build_for(bundle, framework, "cpu"), calibration)
    return lambda batch, batch_size=32: backend.predict_logits_int8(quantized, batch, batch_size=batch_size)


def logits_for_images(bundle: WeightBundle, images: Sequence[np.ndarray], framework: str = DEFAULT_FRAMEWORK,
                      device: str = "auto", precision: str = "fp32", calibration: np.ndarray | None = None) -> np.ndarray:
    """Logits for uint8 RGB images, preprocessed the way the weights expect; `calibration` is a
    preprocessed batch (evaluate.dataset_eval.calibration_batch) for int8."""
    if not images:
        raise UserInputError("no images given; pass at least one image file.")
    meta = bundle.meta
    if meta.input_size and meta.input_size != meta.preprocess.crop:  # the model would be fed another size
        raise UserInputError(f"the weights' metadata contradicts itself: input size {meta.input_size} but a "
                             f"preprocessing crop of {meta.preprocess.crop}; re-create the file with matching values.")
    batch = np.stack([preprocess(image, bundle.meta.preprocess) for image in images])
    return inference_model(bundle, framework, device, precision, calibration)(batch, 32)


def predict_images(bundle: WeightBundle, images: Sequence[np.ndarray], framework: str = DEFAULT_FRAMEWORK,
                   k: int = 5, device: str = "auto", precision: str = "fp32",
                   calibration: np.ndarray | None = None) -> list[list[Prediction]]:
    """Top-k predictions for each image."""
    if k < 1:
        raise UserInputError(f"--top must be at least 1; received {k}.")
    logits = logits_for_images(bundle, images, framework, device, precision, calibration)
    bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if bad.size:  # NaN probabilities would be printed as invalid JSON with exit status 0
        raise UserInputError(f"the model's outputs for {bad.size} of {len(logits)} image(s) hold NaN/Inf, so the weights "
                             f"do (sanity-checked metadata cannot); run `alexnet verify` on them.")
    return top_k(_softmax(logits), bundle.meta.categories, k, bundle.meta.class_ids)
