"""PyTorch implementation of the Backend protocol (alexnet_lab.frameworks.protocol): the AlexNet
module and its LRN layer, canonical <-> state dict, devices, bf16 and int8 inference, .pth files,
ONNX / TorchScript / torch.export exports, and the torchvision / timm style builders.
"""

from __future__ import annotations

from alexnet_lab.frameworks.torch import convert
from alexnet_lab.frameworks.torch.convert import (
    from_canonical,
    model_num_classes,
    model_variant,
    state_dict_keys,
    to_canonical,
    weight_layers,
)
from alexnet_lab.frameworks.torch.device import resolve_device
from alexnet_lab.frameworks.torch.export import EXPORTERS
from alexnet_lab.frameworks.torch.hub import alexnet, alexnet_cifar, alexnet_original, create_model, list_models
from alexnet_lab.frameworks.torch.io import read_weights, write_weights
from alexnet_lab.frameworks.torch.model import (
    AlexNet,
    auto_inference_precision,
    build_model,
    cast_for_inference,
    predict_logits,
    to_device,
)
from alexnet_lab.frameworks.torch.quantize import check_int8, predict_logits_int8, quantize_int8
from alexnet_lab.frameworks.torch.taps import class_gradients, layer_outputs

FRAMEWORK = "torch"
WEIGHT_SUFFIXES = (".pth", ".pt")

__all__ = ["AlexNet", "EXPORTERS", "FRAMEWORK", "WEIGHT_SUFFIXES", "alexnet", "alexnet_cifar", "alexnet_original",
           "auto_inference_precision", "build_model", "cast_for_inference", "check_int8", "class_gradients",
           "convert", "create_model",
           "from_canonical", "layer_outputs", "list_models", "model_num_classes", "model_variant",
           "predict_logits", "predict_logits_int8", "quantize_int8", "read_weights", "resolve_device",
           "state_dict_keys", "to_canonical", "to_device", "weight_layers", "write_weights"]
