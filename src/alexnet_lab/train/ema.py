"""The exponential moving average of the weights (--ema-decay), the part both frameworks share.

After every optimizer step the run's averaged copy moves towards the live weights:
``ema = d * ema + (1 - d) * live``. The decay is warmed up as in TensorFlow's
``tf.train.ExponentialMovingAverage(num_updates=...)``: update n uses
``min(decay, (1 + n) / (10 + n))``, so the first steps follow the weights closely and a short run
does not keep a visible share of its random initialisation in the average (docs/recipes.md).

What is averaged: every floating-point tensor of the model, the BatchNorm running mean and
variance included, with the same decay; integer state (PyTorch's num_batches_tracked) is copied;
Keras' dropout seed states are not part of it. Averaging the BatchNorm statistics, rather than
copying the live ones, is the choice of torch.optim.swa_utils.AveragedModel(use_buffers=True) and
timm's ModelEmaV2: the live statistics follow the live weights of the last ~10 steps (momentum
0.1), the averaged weights are those of the last ~1 / (1 - d) steps, and statistics averaged
over the same window describe the averaged network better.

When the average is on, validation, the choice of the best epoch and the run's saved models
(best / last .safetensors) use the averaged weights; the checkpoints keep both the live weights
(to continue training) and the average with its update count, so --resume continues exactly.
"""

from __future__ import annotations

WARMUP = 10  # (1 + n) / (WARMUP + n): 0.1 at the first update, 0.9 after 80, 0.99 after 890


def decay_at(decay: float, updates: int) -> float:
    """The decay of the update that follows `updates` earlier ones."""
    return min(decay, (1.0 + updates) / (WARMUP + updates))
