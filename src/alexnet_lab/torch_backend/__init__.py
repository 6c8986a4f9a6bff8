"""PyTorch adapter: AlexNet model, canonical <-> state dict, inference and training.

Exposes the same function names as :mod:`alexnet_lab.keras_backend`; `train` is imported on use.
"""

import importlib

from alexnet_lab.torch_backend import convert
from alexnet_lab.torch_backend.convert import from_canonical, model_variant, state_dict_keys, to_canonical
from alexnet_lab.torch_backend.hub import alexnet, alexnet_cifar, alexnet_original, create_model, list_models
from alexnet_lab.torch_backend.model import (
    AlexNet,
    auto_inference_precision,
    build_model,
    cast_for_inference,
    predict_logits,
    to_device,
)

FRAMEWORK = "torch"


def __getattr__(name: str):
    if name == "train":  # the training loop pulls in more modules; load it only when asked
        return importlib.import_module("alexnet_lab.torch_backend.train")
    raise AttributeError(name)


__all__ = ["AlexNet", "alexnet", "alexnet_cifar", "alexnet_original", "auto_inference_precision", "create_model",
           "list_models", "model_variant", "cast_for_inference", "FRAMEWORK", "build_model", "convert", "from_canonical", "predict_logits", "state_dict_keys", "to_device",
           "to_canonical"]
