"""PyTorch implementation of the Backend protocol (alexnet_lab.frameworks.protocol): the AlexNet
module and its LRN layer, canonical <-> state dict, devices, bf16 and int8 inference, .pth files,
ONNX / TorchScript / torch.export exports, and the torchvision / timm style builders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.frameworks.torch import convert, export, io, quantize
from alexnet_lab.frameworks.torch.convert import (
    from_canonical,
    model_from_bundle,
    model_num_classes,
    model_variant,
    state_dict_keys,
    to_canonical,
    weight_layers,
)
from alexnet_lab.frameworks.torch.device import resolve_device
from alexnet_lab.frameworks.torch.hub import alexnet, alexnet_cifar, alexnet_original, create_model, list_models
from alexnet_lab.frameworks.torch.model import (
    AlexNet,
    auto_inference_precision,
    build_model,
    cast_for_inference,
    predict_logits,
    to_device,
)
from alexnet_lab.frameworks.torch.quantize import predict_logits_int8, quantize_int8

FRAMEWORK = "torch"
WEIGHT_SUFFIXES = (".pth", ".pt")
EXPORT_FORMATS = tuple(export.EXPORTERS)

def check_int8() -> None:
    """Raises UserInputError when this PyTorch build has no int8 CPU kernels."""
    quantize.int8_engine()

def read_weights(path: str | os.PathLike[str], default_meta=None) -> WeightBundle:
    """A .pth / .pt state dict (loaded with weights_only=True), with its metadata when it has some."""
    return io.read_pth(path, default_meta)

def write_weights(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    """A .pth state dict in torchvision's key names, metadata included."""
    return io.write_pth(bundle, path)

def export_model(fmt: str, bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """Write export `fmt` (onnx, torchscript, torch-export) of the bundle's model at `path`."""
    export.EXPORTERS[fmt](bundle, path, metadata)

__all__ = ["AlexNet", "EXPORT_FORMATS", "FRAMEWORK", "WEIGHT_SUFFIXES", "alexnet", "alexnet_cifar", "alexnet_original",
           "auto_inference_precision", "build_model", "cast_for_inference", "check_int8", "convert", "create_model",
           "export_model", "from_canonical", "list_models", "model_from_bundle", "model_num_classes", "model_variant",
           "predict_logits", "predict_logits_int8", "quantize_int8", "read_weights", "resolve_device",
           "state_dict_keys", "to_canonical", "to_device", "weight_layers", "write_weights"]
