"""Keras 3 layers AlexNet needs and Keras lacks, written with keras.ops for every backend.

The models the builder makes no longer use these classes (see frameworks.keras.blocks: the same
arithmetic from built-in layers and ops, so a saved `.keras` file loads without alexnet_lab);
they stay registered so `.keras` files written before that still load, and for use on their own.
"""

from __future__ import annotations

import math

import numpy as np
from keras import layers, ops, saving


def local_response_norm(inputs, size: int, alpha: float, beta: float, k: float):
    """LRN over the last axis with keras.ops (eager tensors or symbolic Keras tensors alike)."""
    channels = inputs.shape[-1]
    squared = ops.square(inputs)
    padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[size // 2, (size - 1) // 2]])
    window_sum = padded[..., 0:channels]
    for offset in range(1, size):
        window_sum = window_sum + padded[..., offset : offset + channels]
    return inputs / ops.power(k + (alpha / size) * window_sum, beta)


def adaptive_average_pool(inputs, output_size: int):
    """AdaptiveAveragePooling2D's arithmetic on a channels-last map of static size (keras.ops)."""
    height, width = inputs.shape[1], inputs.shape[2]
    rows = adaptive_pool_matrix(height, output_size).T  # numpy constants: stored in a saved config
    cols = adaptive_pool_matrix(width, output_size).T
    # transposes and batched products with a 2-D right-hand side: no reshape that needs the batch
    # size, so the layer also converts to TensorFlow Lite (int8) with a free batch dimension
    pooled = ops.matmul(ops.transpose(inputs, (0, 2, 3, 1)), rows)  # n, w, c, o
    pooled = ops.matmul(ops.transpose(pooled, (0, 3, 2, 1)), cols)  # n, o, c, p
    pooled = ops.transpose(pooled, (0, 1, 3, 2))
    # float32 constants promote a bfloat16 map to float32; hand back the input's dtype
    return pooled if pooled.dtype == inputs.dtype else ops.cast(pooled, inputs.dtype)


@saving.register_keras_serializable(package="alexnet_lab")
class LocalResponseNormalization(layers.Layer):
    """Cross-channel LRN on channels-last input, in the Caffe / torch.nn.LocalResponseNorm form.

    b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_c'^2) ** beta, where the window
    holds `size` channels: size // 2 before c and (size - 1) // 2 after (torch's padding), zero
    outside. tf.nn.local_response_normalization takes alpha / size and depth_radius (size-1)/2.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)

    def call(self, inputs):
        return local_response_norm(inputs, self.size, self.alpha, self.beta, self.k)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


def adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) averaging matrix with torch's adaptive bins [floor(i*in/out), ceil((i+1)*in/out))."""
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    for i in range(out_size):
        start, end = (i * in_size) // out_size, math.ceil((i + 1) * in_size / out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@saving.register_keras_serializable(package="alexnet_lab")
class AdaptiveAveragePooling2D(layers.Layer):
    """Average-pool a channels-last map to a fixed output_size, like torch's AdaptiveAvgPool2d.

    The bins depend only on the static input size, so the pooling is two small matrix products.
    An input already at output_size passes through unchanged.
    """

    def __init__(self, output_size: int = 6, **kwargs):
        super().__init__(**kwargs)
        self.output_size = int(output_size)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if (height, width) == (self.output_size, self.output_size):
            return inputs
        return adaptive_average_pool(inputs, self.output_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size, self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}
