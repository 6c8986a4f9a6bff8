"""Pretrained weights into a PyTorch AlexNet: the one route every builder takes
(build_model(weights=...), torchvision's alexnet(weights=...), timm's create_model(pretrained=...)).

Weights come through the registry and files (weights.load_weights) and are placed by
weights.pretrained.load_pretrained, so preprocessing, class names and hash checks stay bound to
the file; the model's pretrained_cfg records where they came from.
"""

from __future__ import annotations

import os

from torch import nn

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.weights.catalog import model_cfg, resolve_weights_name
from alexnet_lab.weights.pretrained import bundle_for, load_pretrained


def load_into(model: nn.Module, weights: str | os.PathLike | WeightBundle) -> nn.Module:
    """Load weights into a freshly built model: every layer the model has, fc8 only when its
    class count matches (otherwise it keeps its fresh initialisation, logged). Sets
    model.pretrained_cfg from the weights' preprocessing."""
    bundle = bundle_for(weights, model.spec.name)
    load_pretrained(model, "torch", bundle)
    name = bundle.meta.source if isinstance(weights, WeightBundle) else str(resolve_weights_name(weights, model.spec.name))
    model.pretrained_cfg = model_cfg(model.spec.name, name, model.num_classes, bundle.meta.preprocess)
    return model
