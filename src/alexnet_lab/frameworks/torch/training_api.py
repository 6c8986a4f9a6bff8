"""timm's training-side model interface for the PyTorch AlexNet: the parameter groups of
`group_matcher` (layer-wise learning-rate decay) and the feature blocks that
`set_grad_checkpointing` recomputes in the backward pass instead of storing.

The groups follow the network: stem = conv1 (with bn1), blocks = conv2 ... conv5 (each with its
BatchNorm), head = fc6 ... fc8, as regexes over the model's own state-dict names (torchvision's
`features.0` for owt, `features.conv1` for the other variants) in timm's dict format.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

HEAD_LAYERS = ("fc6", "fc7", "fc8")


def _pattern(model: nn.Module, names: list[str]) -> str:
    """A regex matching the parameters of the stable `names` (and nothing that merely starts alike)."""
    return "^(?:" + "|".join(re.escape(model.state_dict_prefix(n)) for n in names) + r")\."


def _with_bn(model: nn.Module, conv: str) -> list[str]:
    bn = f"bn{conv[len('conv'):]}"
    return [conv, bn] if bn in model.layer_names else [conv]


def group_matcher(model: nn.Module, coarse: bool = False) -> dict:
    """timm's group_matcher: {'stem': regex, 'blocks': regex or [(regex, (ordinal,)), ...], 'head': regex}.

    coarse=True puts conv2 ... conv5 into one group; otherwise each conv block is its own group,
    in network order (timm.optim's param_groups_layer_decay gives each group its own rate).
    """
    convs = list(model.spec.conv_names)
    blocks = [(_pattern(model, _with_bn(model, conv)), (i,)) for i, conv in enumerate(convs[1:], start=1)]
    if coarse:
        blocks = _pattern(model, [name for conv in convs[1:] for name in _with_bn(model, conv)])
    return {"stem": _pattern(model, _with_bn(model, convs[0])), "blocks": blocks,
            "head": _pattern(model, list(HEAD_LAYERS))}


def feature_blocks(features: nn.Sequential) -> list[list[nn.Module]]:
    """The feature modules split before each convolution: conv -> [bn] -> relu [-> lrn] [-> pool]."""
    blocks: list[list[nn.Module]] = []
    for module in features:
        if isinstance(module, nn.Conv2d) or not blocks:
            blocks.append([])
        blocks[-1].append(module)
    return blocks


@contextmanager
def _keep_running_stats(modules: list[nn.Module]) -> Iterator[None]:
    """Undo what the recomputation does to BatchNorm's running statistics: the forward pass
    already updated them once, and the backward pass's second forward must not do it again."""
    norms = [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in m.buffers()] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for buffer, value in zip(m.buffers(), buffers):
                    buffer.copy_(value)


def _run(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for module in modules:
        x = module(x)
    return x


def checkpointed_features(features: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """features(x), keeping only each block's input for the backward pass (torch.utils.checkpoint,
    non-reentrant): the other activations are recomputed, trading compute for memory."""
    for block in feature_blocks(features):
        def contexts(block=block):
            return nullcontext(), _keep_running_stats(block)  # (forward, recomputation)

        x = checkpoint(_run, block, x, use_reentrant=False, context_fn=contexts)
    return x
