"""AugmentSpec as TensorFlow ops, for the Keras tf.data input pipeline.

Mirrors the numpy reference :func:`alexnet_lab.data.augment` step by step and in its order:
random-resized-crop, zero-padded random crop, horizontal flip, colour jitter (brightness,
contrast, saturation), cutout, then a random crop to the network input when the stored image is larger
(as :func:`alexnet_lab.data.datasets.train_view`). Every random draw is a stateless op keyed by
a per-sample seed, so the views depend only on (run seed, epoch, sample index): the same on any
number of parallel map calls and after a resume. The draws differ from numpy's (another
generator), the distributions are the same.
"""

from __future__ import annotations

import math

import tensorflow as tf

from alexnet_lab.core.preprocessing import crop_offsets
from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.augment import CROP_ATTEMPTS, LUMA, fallback_crop_box


def _uniform(seed: tf.Tensor, low: float = 0.0, high: float = 1.0, shape: tuple[int, ...] = ()) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high, dtype=tf.float32)


def _offset(seed: tf.Tensor, span: tf.Tensor) -> tf.Tensor:
    """A uniform integer in [0, span] (span >= 0)."""
    count = tf.cast(span + 1, tf.float32)
    return tf.minimum(tf.cast(tf.floor(_uniform(seed) * count), tf.int32), tf.cast(span, tf.int32))


def _resized_crop(image: tf.Tensor, crop: tuple, out_size: int, seed: tf.Tensor) -> tf.Tensor:
    """torchvision's RandomResizedCrop box (10 draws, first that fits, else the fallback), resized
    with antialiasing like the reference (crop_and_resize would alias when it shrinks)."""
    (scale_low, scale_high), ratio = crop
    size = int(image.shape[0])
    seeds = tf.random.experimental.stateless_split(seed, 4)
    target = size * size * _uniform(seeds[0], scale_low, scale_high, (CROP_ATTEMPTS,))
    aspect = tf.exp(_uniform(seeds[1], math.log(ratio[0]), math.log(ratio[1]), (CROP_ATTEMPTS,)))
    box_w = tf.cast(tf.round(tf.sqrt(target * aspect)), tf.int32)
    box_h = tf.cast(tf.round(tf.sqrt(target / aspect)), tf.int32)
    fits = (box_w > 0) & (box_w <= size) & (box_h > 0) & (box_h <= size)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    fallback_top, fallback_left, fallback_h, fallback_w = fallback_crop_box(size, size, ratio)  # the reference's
    found = tf.reduce_any(fits)
    height = tf.where(found, box_h[first], fallback_h)
    width = tf.where(found, box_w[first], fallback_w)
    top = tf.where(found, _offset(seeds[2], size - height), fallback_top)
    left = tf.where(found, _offset(seeds[3], size - width), fallback_left)
    box = tf.slice(image, tf.stack([top, left, 0]), tf.stack([height, width, 3]))
    return tf.image.resize(box, (out_size, out_size), method="bilinear", antialias=True)


def _padded_crop(image: tf.Tensor, padding: int, seed: tf.Tensor) -> tf.Tensor:
    height, width = int(image.shape[0]), int(image.shape[1])
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])  # zero padding
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top, left = _offset(seeds[0], tf.constant(2 * padding)), _offset(seeds[1], tf.constant(2 * padding))
    return tf.slice(padded, tf.stack([top, left, 0]), [height, width, 3])


def _jitter(image: tf.Tensor, amount: float, seed: tf.Tensor) -> tf.Tensor:
    """Brightness, contrast, saturation on a float 0-255 image, clipped after each like the reference."""
    brightness, contrast, saturation = tf.unstack(_uniform(seed, 1.0 - amount, 1.0 + amount, (3,)))
    luma = tf.constant(LUMA, tf.float32)  # the reference's ITU-R 601 weights
    out = tf.clip_by_value(image * brightness, 0.0, 255.0)
    mean_grey = tf.reduce_mean(tf.tensordot(out, luma, 1))
    out = tf.clip_by_value((out - mean_grey) * contrast + mean_grey, 0.0, 255.0)
    grey = tf.tensordot(out, luma, 1)[:, :, None]
    return tf.clip_by_value((out - grey) * saturation + grey, 0.0, 255.0)


def _random_crop(image: tf.Tensor, crop: int, seed: tf.Tensor) -> tf.Tensor:
    size = int(image.shape[0])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    top, left = _offset(seeds[0], tf.constant(size - crop)), _offset(seeds[1], tf.constant(size - crop))
    return tf.slice(image, tf.stack([top, left, 0]), [crop, crop, 3])


def _cutout(image: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """A size x size square around a uniform pixel, clipped at the borders, in the image's mean colour."""
    height, width = int(image.shape[0]), int(image.shape[1])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    centre_y, centre_x = _offset(seeds[0], tf.constant(height - 1)), _offset(seeds[1], tf.constant(width - 1))
    rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
    top, left = centre_y - size // 2, centre_x - size // 2
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return tf.where(inside[:, :, None], tf.reduce_mean(image, axis=(0, 1)), image)


def augment_image(image: tf.Tensor, spec: AugmentSpec, crop: int, seed: tf.Tensor) -> tf.Tensor:
    """One augmented crop x crop uint8 view of a square S x S x 3 uint8 image.

    Args:
        image: the stored uint8 image (static shape).
        spec: the transforms to apply.
        crop: the network input size.
        seed: int64 tensor of shape (2,), unique per (run seed, epoch, sample).
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    out = tf.cast(image, tf.float32)
    if spec.random_resized_crop is not None:
        out = _resized_crop(out, spec.random_resized_crop, crop, seeds[0])
    if spec.random_crop_padding:
        out = _padded_crop(out, spec.random_crop_padding, seeds[1])
    if spec.hflip:
        out = tf.cond(_uniform(seeds[2]) < 0.5, lambda: tf.reverse(out, axis=[1]), lambda: out)
    if spec.color_jitter:
        out = _jitter(out, spec.color_jitter, seeds[3])
    if spec.cutout:
        out = _cutout(out, spec.cutout, tf.random.experimental.stateless_fold_in(seed, 5))  # the 5 above unchanged
    if int(out.shape[0]) > crop:
        out = _random_crop(out, crop, seeds[4])
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def center_view(image: tf.Tensor, crop: int) -> tf.Tensor:
    """The evaluation view: centre crop with offsets floor((S - crop) / 2), like eval_view."""
    size = int(image.shape[0])
    if size <= crop:
        return image
    offset, _ = crop_offsets(size, size, crop)
    return image[offset : offset + crop, offset : offset + crop]
