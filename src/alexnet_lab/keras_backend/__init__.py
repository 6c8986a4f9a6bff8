"""Keras 3 adapter: the keras.applications contract (AlexNet, AlexNetOriginal, preprocess_input,
decode_predictions), LRN layer, canonical <-> Keras weights.

Exposes the same function names as :mod:`alexnet_lab.torch_backend`. Works on every Keras
backend; the backend is Keras' choice (KERAS_BACKEND), TensorFlow by default. `train` (the
training loop) is imported on use.
"""

import contextlib
import importlib
import os
import sys


@contextlib.contextmanager
def _native_stderr_hushed():
    """Silence TensorFlow's native start-up log lines (written straight to file descriptor 2
    before absl logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot stop them). Python
    exceptions still propagate; set ALEXNET_LAB_TF_VERBOSE=1 to see the lines."""
    if os.environ.get("ALEXNET_LAB_TF_VERBOSE") or "tensorflow" in sys.modules:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_hushed():
    import keras  # noqa: F401 - the first import loads the backend's native libraries

from alexnet_lab.keras_backend.applications import AlexNetCifar, AlexNetOriginal, decode_predictions, preprocess_input
from alexnet_lab.keras_backend.convert import from_canonical, load_into, model_variant, to_canonical
from alexnet_lab.keras_backend.layers import AdaptiveAveragePooling2D, LocalResponseNormalization
from alexnet_lab.keras_backend.model import (
    AlexNet,
    auto_inference_precision,
    build_model,
    cast_for_inference,
    predict_logits,
    to_device,
)

FRAMEWORK = "keras"


def __getattr__(name: str):
    if name == "train":  # the training loop pulls in more modules; load it only when asked
        return importlib.import_module("alexnet_lab.keras_backend.train")
    raise AttributeError(name)


__all__ = [
    "AdaptiveAveragePooling2D",
    "AlexNet",
    "AlexNetCifar",
    "AlexNetOriginal",
    "decode_predictions",
    "model_variant",
    "preprocess_input",
    "auto_inference_precision",
    "cast_for_inference",
    "FRAMEWORK",
    "LocalResponseNormalization",
    "build_model",
    "from_canonical",
    "load_into",
    "predict_logits",
    "to_canonical",
    "to_device",
]
