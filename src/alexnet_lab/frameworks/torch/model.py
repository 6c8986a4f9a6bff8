"""The one build-and-load route for PyTorch (timm's build_model_with_cfg): :func:`build_model`
builds the network of :mod:`.network` and loads weights into it. Every other builder (the root
``alexnet()``, torchvision's ``alexnet(weights=...)`` and timm's ``create_model`` in
:mod:`.hub`, ``frameworks.build_for``, the trainer) is a thin call into it. Also here: running a
built model (devices, inference precision, logits).
"""

from collections.abc import Sequence

import numpy as np
import torch

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.precision import inference_auto
from alexnet_lab.core.spec import DEFAULT_VARIANT, ArchSpec, get_arch
from alexnet_lab.frameworks.torch.network import AlexNet
from alexnet_lab.weights.catalog import model_cfg
from alexnet_lab.weights.pretrained import BuildPlan, load_pretrained, plan_build


def build_model(variant: str | ArchSpec | None = None, num_classes: int | None = None, dropout: float = 0.5,
                input_size: int | None = None, *, weights: object = None, in_chans: int = 3) -> AlexNet:
    """Build an AlexNet: PyTorch's default initialisation, or weights loaded (the arguments of
    :func:`build_and_load`, which also says which layers were not loaded)."""
    return build_and_load(variant, num_classes, dropout, input_size, weights=weights, in_chans=in_chans)[0]


def build_and_load(variant: str | ArchSpec | None = None, num_classes: int | None = None, dropout: float = 0.5,
                   input_size: int | None = None, *, weights: object = None, in_chans: int = 3,
                   skip_layers: Sequence[str] = ()) -> tuple[AlexNet, list[str]]:
    """The route: build an AlexNet and load weights into it; returns (model, the layers that keep
    their fresh initialisation: fc8 when the class count differs, and `skip_layers`).

    Args:
        variant: 'owt' (torchvision), 'original' (2012 / Caffe), 'cifar', 'cifar-wide' or an
            ArchSpec; default the weights' variant, else 'owt'.
        num_classes: width of fc8; 0 builds it without fc8 (fc7 features out, as timm). Default:
            the weights', else the variant's own (10 for the CIFAR variants, 1000 otherwise).
        dropout: dropout probability before (owt) or after (original) fc6 and fc7.
        input_size: the square input size it will be fed; checked against the classifier.
        weights: None (random), a registry name ('imagenet', 'torchvision', 'bvlc'), a weight
            file or a WeightBundle. Every layer is loaded except fc8 when num_classes differs
            from the weights' (fc8 then keeps its fresh initialisation, logged).
        in_chans: input channels (3 unless random weights).
        skip_layers: stable layer names whose pretrained values are not loaded (fine-tuning).
    """
    if num_classes is not None and num_classes < 0:
        raise UserInputError(f"num_classes must be 0 (no head) or more; received {num_classes}.")
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); received {dropout}.")
    channels = get_arch(variant or DEFAULT_VARIANT).in_channels
    if weights is not None and in_chans != channels:  # refused before the weights are fetched
        raise UserInputError(f"pretrained weights need in_chans={channels}; received in_chans={in_chans}. "
                             "Pass weights=None to train a model with other input channels.")
    plan = plan_build(variant, num_classes, weights, input_size)
    model = AlexNet(plan.spec, num_classes=plan.num_classes, dropout=dropout, in_chans=in_chans)
    return model, ([] if plan.bundle is None else _load(model, plan, skip_layers))


def _load(model: AlexNet, plan: BuildPlan, skip_layers: Sequence[str] = ()) -> list[str]:
    reinit = load_pretrained(model, "torch", plan.bundle, skip_layers=skip_layers)
    model.pretrained_cfg = model_cfg(plan.spec, plan.weights_name, model.num_classes, plan.bundle.meta.preprocess)
    return reinit


def load_into(model: AlexNet, weights: "str | WeightBundle") -> AlexNet:
    """Load weights into a built model through the route's loading step: every layer it has, fc8
    only when its class count matches. Sets model.pretrained_cfg from the weights' preprocessing."""
    _load(model, plan_build(model.spec, None, weights))
    return model


@torch.no_grad()
def predict_logits(model: AlexNet, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (float32 numpy) for a preprocessed N x H x W x 3 batch, in eval mode, channels-last
    where that is faster (see device.use_channels_last; the model is converted in place)."""
    from alexnet_lab.frameworks.torch.device import memory_format, use_channels_last

    model.eval()
    first = next(model.parameters())
    device, dtype = first.device, first.dtype  # bfloat16 after cast_for_inference(model, "bf16")
    layout = memory_format(use_channels_last("auto", device))
    model.to(memory_format=layout)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(batch_nhwc), batch_size):
            # NHWC in memory already: permuting the view gives a channels-last NCHW tensor
            chunk = torch.from_numpy(np.ascontiguousarray(batch_nhwc[start : start + batch_size])).permute(0, 3, 1, 2)
            chunk = chunk.to(device, dtype).contiguous(memory_format=layout)
            outputs.append(model(chunk).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.num_classes), np.float32)


def to_device(model: AlexNet, device: str = "auto") -> AlexNet:
    """Move the model to --device (auto: CUDA, then MPS, then CPU)."""
    from alexnet_lab.frameworks.torch.device import resolve_device

    return model.to(resolve_device(device))


def cast_for_inference(model: AlexNet, precision: str) -> AlexNet:
    """Hold the weights in the inference precision, once: fp32 leaves the model as it is; bf16
    casts parameters and buffers to bfloat16 and predict_logits feeds it bfloat16 input.

    Casting once is what makes bf16 pay at every batch size. Autocast instead re-casts the 58 M
    fully connected weights on every call, which made one image slower than in fp32
    (docs/performance.md has the measurements).
    """
    return model.to(torch.bfloat16) if precision == "bf16" else model


def auto_inference_precision(device: str = "auto") -> str:
    """What `--precision auto` means for inference on `device`: bf16 where it is native (CPUs with
    AVX512-BF16 or AMX, GPUs with bf16), otherwise fp32."""
    from alexnet_lab.frameworks.torch.device import device_kind, resolve_device

    return inference_auto(*device_kind(resolve_device(device)))
