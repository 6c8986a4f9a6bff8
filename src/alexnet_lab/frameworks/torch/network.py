"""AlexNet as a torch.nn.Module, built from an ArchSpec: the architecture alone, no weights loaded.

The `owt` variant reproduces torchvision's module tree (`features.0`, ..., `classifier.6`) so
torchvision state dicts load unchanged; other variants use readable names (`features.conv1`,
`features.lrn1`, `classifier.fc6`). Either way `model.layer("conv1")` finds a layer by its
stable name. timm's model interface (forward_features, forward_head, reset_classifier,
get_classifier, group_matcher, set_grad_checkpointing, pretrained_cfg, forward_intermediates)
sits on the module (the training-side parts in frameworks.torch.training_api). Building with
weights is frameworks.torch.model.build_model, the one route every builder takes; this module
reaches nothing in weights/ that reads files, so the weight-file reader (io) can build from it.

No `from __future__ import annotations` here: fx copies forward's annotations into the code it
generates, and TorchScript cannot resolve them as strings (torch.jit.script(fx.symbolic_trace(m))).
"""

from collections import OrderedDict
from dataclasses import replace

import torch
from torch import nn

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.spec import BN_EPSILON, ArchSpec, get_arch
from alexnet_lab.frameworks.torch.layers import LocalResponseNorm
from alexnet_lab.weights.catalog import model_cfg


def _feature_modules(spec: ArchSpec) -> list[tuple[str, nn.Module]]:
    modules: list[tuple[str, nn.Module]] = []
    in_ch = spec.in_channels
    for i, conv in enumerate(spec.convs, start=1):
        layer = nn.Conv2d(in_ch, conv.out_channels, conv.kernel, conv.stride, conv.padding, groups=conv.groups)
        modules.append((conv.name, layer))
        if conv.batchnorm:
            modules.append((f"bn{i}", nn.BatchNorm2d(conv.out_channels, eps=BN_EPSILON)))
        modules.append((f"relu{i}", nn.ReLU(inplace=True)))
        if conv.lrn:
            lrn = spec.lrn
            modules.append((f"lrn{i}", LocalResponseNorm(lrn.size, alpha=lrn.alpha, beta=lrn.beta, k=lrn.k)))
        if conv.pool:
            modules.append((f"pool{i}", nn.MaxPool2d(spec.pool_kernel, spec.pool_stride)))
        in_ch = conv.out_channels
    return modules


def _classifier_modules(spec: ArchSpec, num_classes: int, dropout: float) -> list[tuple[str, nn.Module]]:
    fc6 = ("fc6", nn.Linear(spec.flat_features, spec.hidden))
    fc7 = ("fc7", nn.Linear(spec.hidden, spec.hidden))
    fc8 = ("fc8", nn.Linear(spec.hidden, num_classes))
    if spec.dropout_first:  # torchvision: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear
        return [("drop6", nn.Dropout(dropout)), fc6, ("relu6", nn.ReLU(inplace=True)),
                ("drop7", nn.Dropout(dropout)), fc7, ("relu7", nn.ReLU(inplace=True)), fc8]
    # Caffe: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
    return [fc6, ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
            fc7, ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)), fc8]


def _sequential(modules: list[tuple[str, nn.Module]], numbered: bool) -> nn.Sequential:
    if numbered:
        return nn.Sequential(*(m for _, m in modules))
    return nn.Sequential(OrderedDict(modules))


class AlexNet(nn.Module):
    """AlexNet for NCHW float input; returns logits (timm's model interface on top).

    `AlexNet()` is torchvision's alexnet; `AlexNet("original", num_classes=10)` the 2012 network.
    num_classes=0 builds it without fc8 (an Identity): the output is fc7's 4096 features, as in
    timm. Layers are found by stable name through the module tree at call time, so swapping the
    head (`model.classifier[6] = nn.Linear(4096, 10)`) moves `layer("fc8")` and `num_classes`.
    """

    # python-side conveniences TorchScript must not compile (torch.jit.script(model) still works)
    __jit_ignored_attributes__ = ["pretrained_cfg"]
    __jit_unused_properties__ = ["num_classes", "num_features", "head_hidden_size", "default_cfg", "layer_names",
                                 "feature_info"]

    def __init__(self, spec: ArchSpec | str = "owt", num_classes: int | None = None, dropout: float = 0.5,
                 in_chans: int = 3) -> None:
        super().__init__()
        num_classes = get_arch(spec).num_classes if num_classes is None else num_classes  # the variant's own
        if num_classes < 0 or in_chans < 1:
            raise UserInputError(f"expected num_classes >= 0 (0: no head) and in_chans >= 1; received "
                                 f"num_classes={num_classes}, in_chans={in_chans}.")
        spec = get_arch(spec)
        if in_chans != spec.in_channels:
            spec = replace(spec, in_channels=in_chans)
        self.spec = spec
        numbered = spec.name == "owt"  # torchvision's key names
        features = _feature_modules(spec)
        classifier = _classifier_modules(spec, max(num_classes, 1), dropout)
        if num_classes == 0:  # timm's features-only head: fc8 is an Identity
            classifier[-1] = ("fc8", nn.Identity())
        self.features = _sequential(features, numbered)
        self.avgpool = nn.AdaptiveAvgPool2d(spec.pooled_size) if spec.adaptive_pool else nn.Identity()
        self.classifier = _sequential(classifier, numbered)
        self._prefixes = {
            name: f"{part}.{index if numbered else name}"
            for part, mods in (("features", features), ("classifier", classifier))
            for index, (name, _) in enumerate(mods)
        }
        self.pretrained_cfg = model_cfg(spec, None, num_classes, in_chans=in_chans)
        self.grad_checkpointing = False

    @property
    def num_classes(self) -> int:
        """The width of the current fc8 (0 when the head is an Identity)."""
        linears = [m for m in self.layer("fc8").modules() if isinstance(m, nn.Linear)]
        return linears[-1].out_features if linears else 0

    @property
    def num_features(self) -> int:
        """Channels of the forward_features map (conv5's output channels), as in timm."""
        return self.spec.convs[-1].out_channels

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits features forward_head(pre_logits=True) returns (fc7's)."""
        return self.spec.hidden

    @property
    def default_cfg(self) -> dict:
        """timm's older name for pretrained_cfg."""
        return self.pretrained_cfg

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every stable name, input to output (conv1, relu1, ..., fc8)."""
        return tuple(self._prefixes)

    def layer(self, name: str) -> nn.Module:
        """A layer by its stable name (`conv1` ... `fc8`, `lrn1`, `pool1`, ...), looked up in the
        module tree now, so a replaced module is found."""
        from alexnet_lab.core.errors import unknown_name_error

        if name not in self._prefixes:
            raise unknown_name_error("layer", name, self._prefixes)
        return self.get_submodule(self._prefixes[name])

    def state_dict_prefix(self, name: str) -> str:
        """The state-dict prefix of a layer: `features.0` for owt conv1, `features.conv1` otherwise."""
        return self._prefixes[name]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pool5 feature map (N x num_features x h x w), before any pooling to 6x6."""
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return self._checkpointed_features(x)
        return self.features(x)

    @torch.jit.unused
    def _checkpointed_features(self, x: torch.Tensor) -> torch.Tensor:
        from alexnet_lab.frameworks.torch.training_api import checkpointed_features

        return checkpointed_features(self.features, x)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """timm's switch: in training, recompute each conv block's activations in the backward pass
        instead of storing them (same gradients, less memory; BatchNorm statistics updated once)."""
        self.grad_checkpointing = bool(enable)

    @torch.jit.unused
    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's parameter groups: stem conv1, blocks conv2..conv5, head fc6..fc8 (regexes)."""
        from alexnet_lab.frameworks.torch.training_api import group_matcher

        return group_matcher(self, coarse)

    def get_classifier(self) -> nn.Module:
        """The head, fc8 (an Identity after reset_classifier(0)), as timm's get_classifier."""
        return self.layer("fc8")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The classifier on a forward_features map; pre_logits=True stops before fc8."""
        x = torch.flatten(self.avgpool(x), 1)
        head = self.layer("fc8")
        for module in self.classifier:
            if module is head:
                break
            x = module(x)
        return x if pre_logits else head(x)

    @property
    def feature_info(self) -> list[dict]:
        """timm's feature_info: module (stable name), num_chs and reduction of each conv block."""
        from alexnet_lab.frameworks.torch.features import feature_info

        return feature_info(self.spec)

    def forward_intermediates(self, x: torch.Tensor, indices=None, stop_early: bool = False,
                              output_fmt: str = "NCHW", intermediates_only: bool = False):
        """timm's forward_intermediates over the stable names (see frameworks.torch.features)."""
        from alexnet_lab.frameworks.torch.features import forward_intermediates

        return forward_intermediates(self, x, indices, stop_early, output_fmt, intermediates_only)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh fc8 with num_classes outputs (0: an Identity, the model returns fc7 features)."""
        if num_classes < 0:
            raise UserInputError(f"num_classes must be 0 (no head) or more; received {num_classes}.")
        parent_name, _, child = self._prefixes["fc8"].rpartition(".")
        reference = next(self.layer("fc7").parameters())  # the new head follows fc7's device and dtype
        new = nn.Linear(self.head_hidden_size, num_classes) if num_classes else nn.Identity()
        setattr(self.get_submodule(parent_name), child, new.to(reference.device, reference.dtype))
        self.pretrained_cfg = {**self.pretrained_cfg, "num_classes": num_classes}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # C,H,W order: the canonical fc6 input order
        return self.classifier(x)
