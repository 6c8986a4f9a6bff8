"""Mixed precision for Keras training: --precision as a Keras dtype policy, and fp16 loss scaling.

auto: bf16 on GPUs that compute it (compute capability 8.0+), fp16 on older GPUs, bf16 on CPUs
with native bf16 (AVX512-BF16 / AMX), fp32 otherwise, the same rule as the PyTorch loop.
Variables stay float32 under both mixed policies; the loss is computed in float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import keras

from alexnet_lab.core.hardware import cpu_has_native_bf16
from alexnet_lab.core.precision import train_precision
from alexnet_lab.frameworks.keras.device import gpu_has_bf16

log = logging.getLogger(__name__)

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@dataclass(frozen=True)
class KerasPrecision:
    name: str  # fp32, bf16 or fp16

    @property
    def policy(self) -> str:
        return POLICIES[self.name]


def resolve_precision(name: str, device: str) -> KerasPrecision:
    """Turn --precision into what runs on `device` ('cpu' or 'gpu:N' from frameworks.keras.device).

    Raises:
        UserInputError: fp16 asked for on the CPU.
    """
    on_gpu = device.startswith("gpu")
    # the GPU's capability is looked up only for auto: it starts TensorFlow's device query
    name = train_precision(name, "gpu" if on_gpu else "cpu", on_gpu and name == "auto" and gpu_has_bf16(device))
    if name == "bf16" and not on_gpu and not cpu_has_native_bf16():
        log.warning("bf16 on a CPU without native bf16 is emulated and slower than fp32")
    return KerasPrecision(name)


@contextlib.contextmanager
def dtype_policy(precision: KerasPrecision) -> Iterator[None]:
    """Build models under the precision's policy; the global policy is restored afterwards, so
    models built later in the process (evaluation) are float32 again."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision.policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class LossScale:
    """Dynamic loss scaling for fp16 (as torch.amp.GradScaler): multiply the loss by `value`;
    a step whose gradients overflow is skipped and halves it; 2000 good steps in a row double it.
    Without fp16 the scale is 1 and never changes."""

    def __init__(self, enabled: bool, value: float = 2.0**15, good_steps: int = 0, growth_interval: int = 2000):
        self.enabled = enabled
        self.value = float(value) if enabled else 1.0
        self.good_steps, self.growth_interval = int(good_steps), growth_interval

    def update(self, finite: bool) -> bool:
        """Record a step's outcome; True when its update should be applied."""
        if not self.enabled:
            return True
        if not finite:
            self.value, self.good_steps = max(self.value / 2.0, 1.0), 0
            return False
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.value, self.good_steps = self.value * 2.0, 0
        return True

    def state(self) -> dict:
        return {"value": self.value, "good_steps": self.good_steps}
