"""A Caffe-TF `bvlc_alexnet.npy` predicts through our PyTorch and Keras models like an independent
implementation of the bvlc deploy network.

The reference below is written here with raw `tf.nn` ops only and consumes the .npy arrays as
they are (HWIO kernels, fc6 rows in H,W,C order, the two groups of conv2/4/5 split by hand): it
shares no model, transform or layout code with the project. Both sides get the same input: the
images preprocessed with the project's BVLC_CAFFE PreprocessSpec (that step is tested on its own
in test_preprocessing); `logits_for_images` applies it from the file's metadata, the reference
receives `preprocess_batch(images, BVLC_CAFFE)`.

The weights are random, He-scaled so activations keep a Caffe-like size through the LRN layers
(where LRN changes the values noticeably), with fc8 scaled so the probabilities spread out.
"""

from __future__ import annotations

import numpy as np
import pytest

from alexnet_lab.core.preprocessing import BVLC_CAFFE, preprocess_batch
from alexnet_lab.core.softmax import softmax
from alexnet_lab.data.images import read_image_rgb
from alexnet_lab.inference.predict import logits_for_images
from alexnet_lab.weights.files import load_weights

BVLC_SHAPES = {  # Caffe-TF layout of bvlc_alexnet.npy
    "conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256), "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384), "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000),
}  # fmt: skip
FC8_SCALE = 0.03  # brings the logits to a few units: probabilities neither uniform nor one-hot


def _random_bvlc_layers(seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    layers = {}
    for name, shape in BVLC_SHAPES.items():
        fan_in = int(np.prod(shape[:-1]))  # kH * kW * in for a conv, `in` for a dense layer
        weights = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        biases = rng.uniform(-0.1, 0.1, size=shape[-1]).astype(np.float32)
        layers[name] = [weights * np.float32(FC8_SCALE) if name == "fc8" else weights, biases]
    return layers


@pytest.fixture(scope="module")
def npy_layers() -> dict[str, list[np.ndarray]]:
    return _random_bvlc_layers()


@pytest.fixture(scope="module", params=["dict-of-lists", "dict-of-dicts"])
def npy_file(request, npy_layers, tmp_path_factory):
    """bvlc_alexnet.npy as np.save of {'conv1': [w, b], ...} (the real file's layout) or of
    {b'conv1': {'weights': w, 'biases': b}, ...}."""
    if request.param == "dict-of-lists":
        content = npy_layers
    else:
        content = {name.encode(): {"weights": w, "biases": b} for name, (w, b) in npy_layers.items()}
    path = tmp_path_factory.mktemp(request.param) / "bvlc_alexnet.npy"
    np.save(path, content, allow_pickle=True)
    return path


def reference_logits(layers: dict[str, list[np.ndarray]], batch_bgr: np.ndarray) -> np.ndarray:
    """The bvlc_alexnet deploy network in raw tf.nn ops, fed a Caffe-preprocessed NHWC batch."""
    import tensorflow as tf

    def conv(x, name: str, stride: int, pad: int, groups: int):
        kernel, bias = layers[name]
        padding = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
        parts = [tf.nn.conv2d(xg, kg, strides=stride, padding=padding)
                 for xg, kg in zip(tf.split(x, groups, axis=3), tf.split(kernel, groups, axis=3))]
        return tf.nn.relu(tf.concat(parts, axis=3) + bias)

    def lrn(x):  # Caffe LRN(local_size 5, alpha 1e-4, beta 0.75) = TF depth_radius 2, alpha 1e-4 / 5
        return tf.nn.local_response_normalization(x, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)

    def pool(x):
        return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="VALID")

    def dense(x, name: str, relu: bool = True):
        weights, bias = layers[name]
        y = tf.matmul(x, weights) + bias
        return tf.nn.relu(y) if relu else y

    x = tf.constant(batch_bgr, dtype=tf.float32)
    x = pool(lrn(conv(x, "conv1", stride=4, pad=0, groups=1)))
    x = pool(lrn(conv(x, "conv2", stride=1, pad=2, groups=2)))
    x = conv(x, "conv3", stride=1, pad=1, groups=1)
    x = conv(x, "conv4", stride=1, pad=1, groups=2)
    x = pool(conv(x, "conv5", stride=1, pad=1, groups=2))
    x = tf.reshape(x, (-1, 6 * 6 * 256))  # NHWC flatten: the order the .npy's fc6 rows use
    x = dense(dense(x, "fc6"), "fc7")  # dropout is the identity at inference
    return dense(x, "fc8", relu=False).numpy()


@pytest.fixture(scope="module")
def images(image_paths) -> list[np.ndarray]:
    return [read_image_rgb(p) for p in image_paths[:4]]


@pytest.fixture(scope="module")
def reference_probabilities(npy_layers, images) -> np.ndarray:
    return softmax(reference_logits(npy_layers, preprocess_batch(images, BVLC_CAFFE)))


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_bvlc_npy_predicts_like_raw_tf_nn(npy_file, images, reference_probabilities, framework):
    bundle = load_weights(npy_file)
    assert bundle.meta.variant == "original" and bundle.meta.preprocess == BVLC_CAFFE
    ours = softmax(logits_for_images(bundle, images, framework))
    ref = reference_probabilities
    assert 0.02 < ref.max(axis=1).min() and ref.max() < 0.99, "the probabilities must be spread out"
    assert np.abs(ours - ref).max() <= 1e-3
    assert np.array_equal(ours.argmax(axis=1), ref.argmax(axis=1))
