"""PyTorch implementation of the Backend protocol (alexnet_lab.frameworks.protocol): the AlexNet
module and its LRN layer, canonical <-> state dict, devices, bf16 and int8 inference, .pth files,
ONNX / TorchScript / torch.export exports, and the torchvision / timm style builders.
"""

from __future__ import annotations

from alexnet_lab.frameworks.torch import convert
from alexnet_lab.frameworks.torch.convert import state_dict_keys
from alexnet_lab.frameworks.torch.hub import alexnet, alexnet_cifar, alexnet_original, create_model, list_models
from alexnet_lab.frameworks.torch.network import AlexNet

# isort: off
# The Backend protocol's members (frameworks/protocol.py), one per line, in the protocol's order
from alexnet_lab.frameworks.torch.model import build_model
from alexnet_lab.frameworks.torch.convert import from_canonical
from alexnet_lab.frameworks.torch.convert import to_canonical
from alexnet_lab.frameworks.torch.convert import model_variant
from alexnet_lab.frameworks.torch.convert import model_num_classes
from alexnet_lab.frameworks.torch.convert import weight_layers
from alexnet_lab.frameworks.torch.device import resolve_device
from alexnet_lab.frameworks.torch.model import to_device
from alexnet_lab.frameworks.torch.model import predict_logits
from alexnet_lab.frameworks.torch.model import cast_for_inference
from alexnet_lab.frameworks.torch.model import auto_inference_precision
from alexnet_lab.frameworks.torch.quantize import check_int8
from alexnet_lab.frameworks.torch.quantize import quantize_int8
from alexnet_lab.frameworks.torch.quantize import predict_logits_int8
from alexnet_lab.frameworks.torch.activations import layer_outputs
from alexnet_lab.frameworks.torch.activations import class_gradients
from alexnet_lab.frameworks.torch.io import read_weights
from alexnet_lab.frameworks.torch.io import write_weights
from alexnet_lab.frameworks.torch.export import EXPORTERS
from alexnet_lab.frameworks import WEIGHT_SUFFIXES as _REGISTRY
# isort: on

FRAMEWORK = "torch"
WEIGHT_SUFFIXES = _REGISTRY[FRAMEWORK]  # the registry's entry (frameworks.WEIGHT_SUFFIXES)

__all__ = ["AlexNet", "EXPORTERS", "FRAMEWORK", "WEIGHT_SUFFIXES", "alexnet", "alexnet_cifar", "alexnet_original",
           "auto_inference_precision", "build_model", "cast_for_inference", "check_int8", "class_gradients",
           "convert", "create_model",
           "from_canonical", "layer_outputs", "list_models", "model_num_classes", "model_variant",
           "predict_logits", "predict_logits_int8", "quantize_int8", "read_weights", "resolve_device",
           "state_dict_keys", "to_canonical", "to_device", "weight_layers", "write_weights"]
