"""Layer outputs and class-score gradients of the PyTorch AlexNet, by stable tap name
(core.explain.tap_names): what `alexnet features` and `alexnet explain` read.

The network is walked module by module (features, avgpool + flatten, classifier), so any tap is
reached without hooks. `conv<i>`, `fc6` and `fc7` are read at their ReLU's output, the block
output Keras gives under the same name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from alexnet_lab.core.explain import INPUT, check_taps

_AFTER_RELU = {"fc6": "relu6", "fc7": "relu7"}


def _module_name(tap: str) -> str:
    if tap.startswith("conv"):
        return f"relu{tap[4:]}"
    return _AFTER_RELU.get(tap, tap)


def _walk(model, x: torch.Tensor, wanted: dict[str, str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run the model on x; returns ({tap: its output}, logits). `wanted` maps module -> tap."""
    found = {wanted[INPUT]: x} if INPUT in wanted else {}
    flattened = False
    for name in model.layer_names:
        if not flattened and model.state_dict_prefix(name).startswith("classifier."):
            x, flattened = torch.flatten(model.avgpool(x), 1), True
        x = model.layer(name)(x)
        if name in wanted:  # a copy: an in-place ReLU further on must not change what was read
            found[wanted[name]] = x if x.requires_grad else x.clone()
    return found, x


def _nhwc(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().float().cpu()
    return (array.permute(0, 2, 3, 1) if array.ndim == 4 else array).contiguous().numpy()


def _input(model, batch_nhwc: np.ndarray) -> torch.Tensor:
    first = next(model.parameters())
    return torch.from_numpy(np.ascontiguousarray(batch_nhwc)).permute(0, 3, 1, 2).to(first.device, first.dtype)


def layer_outputs(model, batch_nhwc: np.ndarray, layers: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
    """Outputs of the named layers for a preprocessed NHWC batch, in one pass per chunk: float32,
    N x H x W x C for conv-side layers, N x F for fc6-fc8."""
    taps = check_taps(model.spec, layers)
    wanted = {_module_name(tap): tap for tap in taps}
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {tap: [] for tap in taps}
    with torch.inference_mode():
        for start in range(0, len(batch_nhwc), batch_size):
            found, _ = _walk(model, _input(model, batch_nhwc[start : start + batch_size]), wanted)
            for tap in taps:
                chunks[tap].append(_nhwc(found[tap]))
    return {tap: np.concatenate(parts) for tap, parts in chunks.items()}


def class_gradients(model, batch_nhwc: np.ndarray, layer: str,
                    classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the layer's output, d logit[class] / d that output, logits) for a preprocessed NHWC batch,
    in eval mode; `layer` may be 'input'. classes: one per image, None for the top class."""
    tap = check_taps(model.spec, [layer], allow_input=True)[0]
    model.eval()
    x = _input(model, batch_nhwc).float().requires_grad_(tap == INPUT)
    with torch.enable_grad():
        found, logits = _walk(model.float(), x, {_module_name(tap): tap} if tap != INPUT else {INPUT: INPUT})
        chosen = logits.argmax(1) if classes is None else torch.as_tensor(list(classes), device=logits.device)
        score = logits.gather(1, chosen.long().view(-1, 1)).sum()
        (gradient,) = torch.autograd.grad(score, found[tap])
    return _nhwc(found[tap]), _nhwc(gradient), logits.detach().float().cpu().numpy()
