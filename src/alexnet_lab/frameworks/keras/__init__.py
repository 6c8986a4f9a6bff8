"""Keras 3 implementation of the Backend protocol (alexnet_lab.frameworks.protocol): the
keras.applications contract (AlexNet, AlexNetOriginal, preprocess_input, decode_predictions), the
LRN layer, canonical <-> Keras weights, bf16 and int8 (TensorFlow Lite) inference, .weights.h5 and
.keras files, ONNX and SavedModel exports.

Works on every Keras backend; the backend is Keras' choice (KERAS_BACKEND), TensorFlow by default.
"""

from __future__ import annotations

import contextlib
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

from alexnet_lab.frameworks.keras.applications import (  # noqa: E402
    AlexNetCifar,
    AlexNetOriginal,
    decode_predictions,
    preprocess_input,
)
from alexnet_lab.frameworks.keras.layers import AdaptiveAveragePooling2D, LocalResponseNormalization  # noqa: E402
from alexnet_lab.frameworks.keras.model import AlexNet, load_into  # noqa: E402

# isort: off
# The Backend protocol's members (frameworks/protocol.py), one per line, in the protocol's order
from alexnet_lab.frameworks.keras.model import build_model  # noqa: E402
from alexnet_lab.frameworks.keras.convert import from_canonical  # noqa: E402
from alexnet_lab.frameworks.keras.convert import to_canonical  # noqa: E402
from alexnet_lab.frameworks.keras.convert import model_variant  # noqa: E402
from alexnet_lab.frameworks.keras.convert import model_num_classes  # noqa: E402
from alexnet_lab.frameworks.keras.convert import weight_layers  # noqa: E402
from alexnet_lab.frameworks.keras.device import resolve_device  # noqa: E402
from alexnet_lab.frameworks.keras.model import to_device  # noqa: E402
from alexnet_lab.frameworks.keras.model import predict_logits  # noqa: E402
from alexnet_lab.frameworks.keras.model import cast_for_inference  # noqa: E402
from alexnet_lab.frameworks.keras.model import auto_inference_precision  # noqa: E402
from alexnet_lab.frameworks.keras.quantize import check_int8  # noqa: E402
from alexnet_lab.frameworks.keras.quantize import quantize_int8  # noqa: E402
from alexnet_lab.frameworks.keras.quantize import predict_logits_int8  # noqa: E402
from alexnet_lab.frameworks.keras.activations import layer_outputs  # noqa: E402
from alexnet_lab.frameworks.keras.activations import class_gradients  # noqa: E402
from alexnet_lab.frameworks.keras.io import read_weights  # noqa: E402
from alexnet_lab.frameworks.keras.io import write_weights  # noqa: E402
from alexnet_lab.frameworks.keras.export import EXPORTERS  # noqa: E402
from alexnet_lab.frameworks import WEIGHT_SUFFIXES as _REGISTRY  # noqa: E402
# isort: on

FRAMEWORK = "keras"
WEIGHT_SUFFIXES = _REGISTRY[FRAMEWORK]  # the registry's entry (frameworks.WEIGHT_SUFFIXES)


__all__ = [
    "AdaptiveAveragePooling2D",
    "AlexNet",
    "AlexNetCifar",
    "AlexNetOriginal",
    "EXPORTERS", "FRAMEWORK",
    "LocalResponseNormalization",
    "WEIGHT_SUFFIXES",
    "auto_inference_precision",
    "build_model",
    "cast_for_inference",
    "check_int8",
    "class_gradients",
    "decode_predictions",
    "from_canonical",
    "layer_outputs",
    "load_into",
    "model_num_classes",
    "model_variant",
    "predict_logits",
    "predict_logits_int8",
    "preprocess_input",
    "quantize_int8",
    "read_weights",
    "resolve_device",
    "to_canonical",
    "to_device",
    "weight_layers",
    "write_weights",
]
