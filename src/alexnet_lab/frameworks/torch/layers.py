"""Layers of our own for the PyTorch model: local response normalisation that runs in bf16 too.

torch.nn.LocalResponseNorm sums the squares of neighbouring channels with avg_pool3d over a 5-D
view. On the CPU that kernel has no bfloat16 version (a bf16 model fails with "avg_pool3d_out_frame
not implemented for 'BFloat16'") and is slow in channels-last (autocast runs it in float32 with a
copy each way). Here the channel window is a banded matrix product: for a channels-last tensor
the N,H,W,C view is contiguous, so the sum over 5 neighbouring channels is one GEMM with a 0/1
band, which oneDNN runs at matrix speed, forward and backward.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing
from torch.nn import functional as F


def channel_band(channels: int, size: int, device: torch.device) -> torch.Tensor:
    """The C x C 0/1 matrix whose column c selects the channels LRN sums for output channel c:
    c - size // 2 ... c + (size - 1) // 2 (torch's and Caffe's window, zero-padded at the ends)."""
    index = torch.arange(channels, device=device)
    rows, cols = index[:, None], index[None, :]
    return ((rows >= cols - size // 2) & (rows <= cols + (size - 1) // 2)).float()


class LocalResponseNorm(nn.LocalResponseNorm):
    """torch.nn.LocalResponseNorm's arithmetic, b_c = a_c / (k + alpha / n * sum of a_i^2)^beta,
    computed in float32 whatever the input dtype and returned in the input dtype.

    Same module type (a subclass), same attributes and no parameters, so state dicts, repr and
    isinstance checks are unchanged. Equal to torch's in float32 (tests/unit/test_parity.py holds
    the tolerance), and faster forward + backward (docs/performance.md).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript: torch's function, the same arithmetic
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        return self._forward_eager(x)

    @torch.jit.unused
    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        if is_fx_symbolic_tracing() or x.dim() != 4:  # fx cannot trace the autocast context; 3-D/5-D: torch's
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        band = channel_band(x.shape[1], self.size, x.device)
        with torch.autocast(x.device.type, enabled=False):  # the window sum stays float32 under autocast
            xf = x.float()
            window = (xf * xf).permute(0, 2, 3, 1) @ band  # N,H,W,C: a view of channels-last memory
            divisor = (window * (self.alpha / self.size) + self.k).pow(self.beta).permute(0, 3, 1, 2)
            return (xf / divisor).to(x.dtype)
