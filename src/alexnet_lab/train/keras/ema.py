"""The Keras moving average of a model's weights and BatchNorm statistics (see train.ema).

The average lives in variables of its own beside the model; validation and saving swap it into
the model (:meth:`KerasEMA.swapped`) and put the live values back bit for bit afterwards, so
one compiled predict function serves both. Runs on the TensorFlow and PyTorch backends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import numpy as np
from keras import ops

from alexnet_lab.train.ema import decay_at


def _averaged(variable) -> bool:
    """Float variables: kernels, biases, BatchNorm gamma / beta / moving statistics (not the
    dropout layers' integer seed states)."""
    return "float" in str(variable.dtype)


class KerasEMA:
    """One float32 variable per averaged model variable, updated after every optimizer step."""

    def __init__(self, model: keras.Model, decay: float):
        self.decay, self.updates = decay, 0
        self.sources = [v for v in model.variables if _averaged(v)]
        self.variables = [keras.Variable(np.array(ops.convert_to_numpy(v.value), np.float32), trainable=False,
                                         name=f"ema_{i}") for i, v in enumerate(self.sources)]
        self._update = self._compile()

    def _step(self, decay) -> None:
        for mine, live in zip(self.variables, self.sources):
            mine.assign(mine.value * decay + ops.cast(live.value, "float32") * (1.0 - decay))

    def _compile(self):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            step = tf.function(self._step, reduce_retracing=True)
            return lambda decay: step(tf.constant(decay, tf.float32))
        import torch

        def step(decay):
            with torch.no_grad():
                self._step(decay)

        return step

    def update(self) -> None:
        """ema = d * ema + (1 - d) * live for every averaged variable."""
        self._update(decay_at(self.decay, self.updates))
        self.updates += 1

    def arrays(self) -> list[np.ndarray]:
        return [np.array(ops.convert_to_numpy(v.value)) for v in self.variables]

    def restore(self, arrays: list[np.ndarray], updates: int) -> None:
        for variable, value in zip(self.variables, arrays, strict=True):
            variable.assign(value)
        self.updates = int(updates)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The model holds the average inside the block and its live values again after it."""
        live = [np.array(ops.convert_to_numpy(v.value)) for v in self.sources]
        try:
            for source, mine in zip(self.sources, self.variables):
                source.assign(ops.cast(mine.value, source.dtype))
            yield
        finally:
            for source, value in zip(self.sources, live):
                source.assign(value)
