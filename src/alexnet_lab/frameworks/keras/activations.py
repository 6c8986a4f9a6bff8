"""Layer outputs and class-score gradients of the Keras AlexNet, by stable tap name
(core.explain.tap_names): what `alexnet features` and `alexnet explain` read.

Taps are read from a functional sub-model over the same layers (no copy of the weights). The
Keras layer behind a tap: `conv<i>` is the Conv2D (its ReLU fused), or `relu<i>` where the block
has BatchNorm between conv and ReLU (the cifar variant); the rest have the tap's own name.
Gradients need a backend with a gradient tape: TensorFlow (Keras' default) is supported.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.explain import INPUT, check_taps
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks.keras.convert import model_variant


def _layer_name(spec, tap: str) -> str:
    if tap.startswith("conv") and spec.convs[int(tap[4:]) - 1].batchnorm:
        return f"relu{tap[4:]}"
    return tap


def _output(model: keras.Model, spec, tap: str):
    """The symbolic tensor a tap reads. lrn<i> is a nested model, whose `.output` is its inner
    graph's: its outer output is read as the input of the pool that follows it."""
    if tap.startswith("lrn"):
        return model.get_layer(f"pool{tap[3:]}").input
    return model.get_layer(_layer_name(spec, tap)).output


def _tap_model(model: keras.Model, taps: Sequence[str]) -> keras.Model:
    spec = get_arch(model_variant(model))
    outputs = [_output(model, spec, tap) for tap in taps]
    return keras.Model(model.inputs, [*outputs, model.outputs[0]], name=f"{model.name}_taps")


def layer_outputs(model: keras.Model, batch_nhwc: np.ndarray, layers: Sequence[str],
                  batch_size: int = 32) -> dict[str, np.ndarray]:
    """Outputs of the named layers for a preprocessed NHWC batch, in one pass per chunk: float32,
    N x H x W x C for conv-side layers, N x F for fc6-fc8."""
    taps = check_taps(get_arch(model_variant(model)), layers)
    sub = _tap_model(model, taps)
    chunks: dict[str, list[np.ndarray]] = {tap: [] for tap in taps}
    for start in range(0, len(batch_nhwc), batch_size):
        found = sub.predict_on_batch(batch_nhwc[start : start + batch_size])
        for tap, array in zip(taps, found):
            chunks[tap].append(np.asarray(array, np.float32))
    return {tap: np.concatenate(parts) for tap, parts in chunks.items()}


def class_gradients(model: keras.Model, batch_nhwc: np.ndarray, layer: str,
                    classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the layer's output, d logit[class] / d that output, logits) for a preprocessed NHWC batch,
    in inference mode; `layer` may be 'input'. classes: one per image, None for the top class.

    Raises:
        UserInputError: Keras runs on a backend other than TensorFlow.
    """
    if keras.backend.backend() != "tensorflow":
        raise UserInputError(f"gradients (explain) need Keras' TensorFlow backend; Keras runs on "
                             f"'{keras.backend.backend()}'. Set KERAS_BACKEND=tensorflow or use --framework torch.")
    import tensorflow as tf

    tap = check_taps(get_arch(model_variant(model)), [layer], allow_input=True)[0]
    x = tf.convert_to_tensor(np.asarray(batch_nhwc, np.float32))
    sub = model if tap == INPUT else _tap_model(model, [tap])
    with tf.GradientTape() as tape:
        if tap == INPUT:
            tape.watch(x)
            read, logits = x, sub(x, training=False)
        else:
            read, logits = sub(x, training=False)
        chosen = tf.argmax(logits, 1) if classes is None else tf.constant(list(classes), tf.int64)
        score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
    gradient = tape.gradient(score, read)
    return (np.asarray(read, np.float32), np.asarray(gradient, np.float32), np.asarray(logits, np.float32))
