"""The PyTorch moving average of a model's weights and BatchNorm statistics (see train.ema)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from alexnet_lab.train.ema import decay_at
from alexnet_lab.train.torch.checkpoint import cpu_state


class TorchEMA:
    """An eval-mode copy of the model whose tensors follow the live model's, one update per step."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        live, mine = model.state_dict(), self.model.state_dict()  # tensors sharing the modules' storage
        self._floats = ([mine[k] for k in mine if mine[k].is_floating_point()],
                        [live[k] for k in mine if mine[k].is_floating_point()])
        self._copied = [(mine[k], live[k]) for k in mine if not mine[k].is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """ema = d * ema + (1 - d) * live for every float tensor; integer counters copied."""
        d = decay_at(self.decay, self.updates)
        averaged, live = self._floats
        torch._foreach_mul_(averaged, d)
        torch._foreach_add_(averaged, live, alpha=1.0 - d)
        for mine, theirs in self._copied:
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": cpu_state(self.model), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
