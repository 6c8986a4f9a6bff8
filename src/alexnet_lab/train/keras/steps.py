"""One phase's training step for the Keras model: loss, gradients, clipping, weight decay and
per-layer learning rates, compiled for the Keras backend in use.

Per-layer learning rates: one Keras optimizer per distinct learning rate of the phase (a
two-phase fine-tune has two: re-initialised and pretrained layers). Scaling gradients instead
would be exact for SGD only; Adam(W) is invariant to the gradient scale, so it needs its own
optimizer per rate, and one rule for both keeps the code simple.

Weight decay is on kernels only (not biases, not BatchNorm), as in the PyTorch loop: for SGD it is
PyTorch's coupled L2 (g += wd * w after clipping, before momentum), for AdamW the decoupled
decay of keras.optimizers.AdamW (w -= lr * wd * w, with each group's own lr, like torch's AdamW).
Keras' SGD keeps lr inside its velocity (m = mu * m - lr * g); with a constant lr this is
PyTorch's update exactly, while the lr schedule changes lr the two differ in the second order.

Gradients and the update are two compiled functions (tf.function on TensorFlow, autograd on
PyTorch), so an fp16 step whose gradients overflow can be skipped from Python. Without a loss scale
(fp32, bf16) on TensorFlow, one tf.function does both: no unscaling pass over the gradients, no
finiteness check, no gradients handed back to Python between the two (what model.fit's step does).

SGD with momentum on TensorFlow updates each variable with one fused kernel
(ResourceApplyKerasMomentum: Keras SGD's own arithmetic, m = mu * m - lr * g, then w += m or, with
Nesterov, w += mu * m - lr * g) instead of Keras' chain of elementwise ops, each a pass over
AlexNet's 61 M weights; tests/unit/test_keras_train_parts.py holds the two to float rounding.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.keras.precision import LossScale
from alexnet_lab.train.phases import Phase


def per_example_cross_entropy(logits, labels, smoothing: float):
    """Cross-entropy per example in float32, with PyTorch's label smoothing: (1-e) * NLL + e * mean(-log p)."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[:, 0]
    if smoothing:
        nll = (1.0 - smoothing) * nll - smoothing * ops.mean(log_probs, axis=-1)
    return nll


def smoothed_cross_entropy(logits, labels, smoothing: float):
    """Mean cross-entropy over the batch (see :func:`per_example_cross_entropy`)."""
    return ops.mean(per_example_cross_entropy(logits, labels, smoothing))


def hits(logits, labels):
    """How many top-1 predictions are right (int32)."""
    return ops.sum(ops.cast(ops.equal(ops.argmax(logits, axis=-1), labels), "int32"))


def _forward(model, x, y, smoothing: float) -> tuple:
    logits = model(x, training=True)
    return smoothed_cross_entropy(logits, y, smoothing), hits(logits, y)


def all_finite(grads):
    return ops.all(ops.stack([ops.all(ops.isfinite(g)) for g in grads]))


class FusedSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD whose momentum update is one fused TensorFlow kernel per variable (the
    module docstring); the same variables and config, so checkpoints do not tell the two apart."""

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or keras.backend.backend() != "tensorflow":  # never import TensorFlow beside torch
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        variable = variable.value if isinstance(variable, keras.Variable) else variable
        momentum = self.momentums[self._get_variable_index(variable)]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=momentum.value.handle, lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype), momentum=tf.cast(self.momentum, dtype), use_nesterov=self.nesterov)


def make_optimizer(config: RunConfig, lr: float, variables: list, name: str,
                   classes: dict | None = None) -> keras.optimizers.Optimizer:
    """SGD (momentum, Nesterov when momentum > 0, as the PyTorch loop) or AdamW, built on `variables`.
    `classes` ({'sgd': cls, 'adamw': cls}) substitutes subclasses (the distributed step's)."""
    classes = classes or {"sgd": FusedSGD, "adamw": keras.optimizers.AdamW}
    if config.optimizer == "adamw":
        optimizer = classes["adamw"](learning_rate=lr, weight_decay=config.weight_decay, beta_1=0.9,
                                     beta_2=0.999, epsilon=1e-8, name=name)
        optimizer.exclude_from_weight_decay(var_list=[v for v in variables if not _is_kernel(v)])
    else:
        optimizer = classes["sgd"](learning_rate=lr, momentum=config.momentum, nesterov=config.momentum > 0,
                                   name=name)
    optimizer.build(variables)
    return optimizer


def _is_kernel(variable) -> bool:
    return variable.path.endswith("/kernel")


def lr_groups(model, phase: Phase, variables: list) -> list[tuple[float, list[int]]]:
    """(peak lr, indices into `variables`) per distinct learning rate, in layer order."""
    lr_of = {id(v): lr for name, lr in phase.layer_lrs for v in model.get_layer(name).trainable_weights}
    groups: dict[float, list[int]] = {}
    for index, variable in enumerate(variables):
        groups.setdefault(lr_of[id(variable)], []).append(index)
    return list(groups.items())


class PhaseStep:
    """The compiled step of one phase: call :meth:`set_lr` then :meth:`run` per batch."""

    optimizer_classes: dict | None = None  # None: FusedSGD and Keras' AdamW

    def __init__(self, model, phase: Phase, config: RunConfig, loss_scale: LossScale):
        self.model, self.config, self.loss_scale = model, config, loss_scale
        self.variables = list(model.trainable_variables)
        self.groups = lr_groups(model, phase, self.variables)
        self.optimizers = [make_optimizer(config, lr, [self.variables[i] for i in idx], f"{config.optimizer}_group{g}",
                                          self.optimizer_classes) for g, (lr, idx) in enumerate(self.groups)]
        self._l2 = config.weight_decay if config.optimizer == "sgd" else 0.0
        self._kernels = [_is_kernel(v) for v in self.variables]
        self._grads, self._apply = self._compile()
        self._fused = None if loss_scale.enabled else self._compile_fused()

    def _compile(self) -> tuple:
        """(gradients function, update function); the distributed step overrides this."""
        return _compile(self.model, self.variables, self.config.label_smoothing, self._update)

    def _compile_fused(self):
        """One function (x, y) -> (loss, correct) that also applies the update, or None where the
        two-function step is the only one (the PyTorch backend, where nothing is compiled)."""
        if training_backend() != "tensorflow":
            return None
        import tensorflow as tf

        model, variables, smoothing, update = self.model, self.variables, self.config.label_smoothing, self._update

        @tf.function(reduce_retracing=True)
        def step_fn(x, y):
            with tf.GradientTape() as tape:
                loss, correct = _forward(model, x, y, smoothing)
            update(tape.gradient(loss, variables))
            return loss, correct

        return step_fn

    def set_lr(self, factor: float) -> None:
        for optimizer, (peak, _) in zip(self.optimizers, self.groups):
            optimizer.learning_rate = peak * factor

    def _update(self, grads) -> None:
        if self.config.grad_clip > 0:  # torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), at most 1
            norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
            grads = [g * ops.minimum(1.0, self.config.grad_clip / (norm + 1e-6)) for g in grads]
        if self._l2:
            grads = [g + self._l2 * v.value if kernel else g
                     for g, v, kernel in zip(grads, self.variables, self._kernels)]
        for optimizer, (_, indices) in zip(self.optimizers, self.groups):
            optimizer.apply([grads[i] for i in indices], [self.variables[i] for i in indices])

    def run(self, x, y) -> tuple[float, int]:
        """One optimizer step on a batch; returns (loss, correct predictions)."""
        if self._fused is not None:
            loss, correct = self._fused(x, y)
            return float(loss), int(correct)
        loss, correct, finite, grads = self._grads(x, y, self.loss_scale.value)
        if self.loss_scale.update(bool(finite) if self.loss_scale.enabled else True):
            self._apply(grads)
        return float(loss), int(correct)


def training_backend() -> str:
    """The Keras backend, when the training loop supports it (tensorflow or torch).

    Raises:
        UserInputError: another backend (JAX: its stateless training API is not wired up here).
    """
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "torch"):
        raise UserInputError(f"Keras training runs on the tensorflow and torch backends; received "
                             f"KERAS_BACKEND={backend}. Set KERAS_BACKEND=tensorflow or torch.")
    return backend


def _compile(model, variables: list, smoothing: float, update) -> tuple:
    if training_backend() == "tensorflow":
        return _tf_functions(model, variables, smoothing, update)
    return _torch_functions(model, variables, smoothing, update)


def _tf_functions(model, variables: list, smoothing: float, update) -> tuple:
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def grads_fn(x, y, scale):
        with tf.GradientTape() as tape:
            loss, correct = _forward(model, x, y, smoothing)
            scaled = loss * scale
        grads = [g / scale for g in tape.gradient(scaled, variables)]
        return loss, correct, all_finite(grads), grads

    apply_fn = tf.function(update, reduce_retracing=True)
    return (lambda x, y, scale: grads_fn(x, y, tf.constant(scale, tf.float32))), apply_fn


def _torch_functions(model, variables: list, smoothing: float, update) -> tuple:
    import torch

    def grads_fn(x, y, scale):
        model.zero_grad(set_to_none=True)
        loss, correct = _forward(model, ops.convert_to_tensor(x), ops.convert_to_tensor(y), smoothing)
        (loss * scale).backward()
        grads = [v.value.grad / scale for v in variables]
        return loss.detach(), correct, all_finite(grads), grads

    def apply_fn(grads):
        with torch.no_grad():
            update(grads)

    return grads_fn, apply_fn


def make_predict(model):
    """A function from a normalised NHWC batch to float32 numpy logits, in inference mode."""
    if training_backend() == "tensorflow":
        import tensorflow as tf

        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    else:
        import torch

        def call(x):
            with torch.no_grad():
                return model(ops.convert_to_tensor(x), training=False)

    return lambda x: np.asarray(ops.convert_to_numpy(ops.cast(call(x), "float32")))
