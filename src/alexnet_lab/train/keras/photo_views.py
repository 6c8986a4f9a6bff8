"""Keras training views cut from the whole photo inside tf.data: the TensorFlow side of
data.train_views, for a streamed store (data.stream.StreamedImages) and a random-resized crop.

Per sample, a short Python plan (tf.numpy_function) reads the file and checks its JPEG header
(data.images.plain_jpeg: the image guard, truncation, EXIF rotation, colour mode), then draws the
box and the flip with numpy's generator keyed by (seed, epoch, index), exactly as the PyTorch
loader draws them (data.augment.resized_crop_box: torchvision's sampling over the whole photo,
ten tries, then its central fallback), and picks the reduced DCT scale PIL's draft would take
there (the box keeps at least twice the crop on its shorter side). TensorFlow then decodes only
the box, at that scale (tf.io.decode_and_crop_jpeg with libjpeg's accurate integer IDCT, the one
PIL uses, so the decoded pixels equal PIL's), resizes it to crop x crop (tf.image.resize,
bilinear with antialias) and flips it, in the parallel map, outside the GIL. The batch is
normalised later, as a whole (train.keras.data).

Anything plain_jpeg does not pass (a PNG, a CMYK or rotated JPEG, a truncated file, one the guard
refuses, an unreadable one) is read by the shared PIL path instead (StreamedImages.train_view:
the same box and flip from the same generator; black, and logged once, when unreadable), as is
every sample whose position is in `forced` (train.keras.data rebuilds a batch that way when
libjpeg fails on a JPEG whose header passed). These views need not equal the numpy reference bit
for bit: tests/unit/test_keras_photo_views.py bounds the difference.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Set

import numpy as np
import tensorflow as tf

from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.augment import resized_crop_box
from alexnet_lab.data.images import draft_reduction, plain_jpeg
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.data.train_views import box_min_side, scaled_box

RATIOS = (1, 2, 4, 8)  # libjpeg's DCT scales; decode_and_crop_jpeg takes one as a fixed attribute
IDCT = "INTEGER_ACCURATE"  # libjpeg's JDCT_ISLOW, as PIL; TensorFlow's default is the coarser JDCT_IFAST
JPEG_SUFFIXES = (".jpg", ".jpeg")
_NO_BOX = np.zeros(4, np.int32)
_NO_VIEW = np.zeros((0, 0, 3), np.uint8)
Plan = tuple[np.ndarray, np.bool_, np.ndarray, np.int32, np.bool_, np.ndarray]


class PhotoViews:
    """index -> crop x crop uint8 training view of a streamed store's photo, as TensorFlow ops."""

    def __init__(self, store: StreamedImages, spec: AugmentSpec, crop: int, seed: int):
        self.store, self.spec, self.crop, self.seed = store, spec, crop, seed
        rest = dataclasses.replace(spec, random_resized_crop=None)
        # other steps after the crop (jitter, cutout): every sample through PIL and the numpy reference
        self.decodes_in_tf = rest in (AugmentSpec(), AugmentSpec(hflip=True))

    def plan(self, position: int, epoch: int, forced: Set[int] = frozenset()) -> Plan:
        """(file bytes, decoded by TensorFlow?, box at the reduced scale, RATIOS index, flip, view):
        the view is the PIL path's finished one when TensorFlow does not decode the file, else empty."""
        rng = np.random.default_rng([self.seed, epoch, position])
        path = self.store.paths[position]
        found = None
        if self.decodes_in_tf and position not in forced and path.lower().endswith(JPEG_SUFFIXES):
            found = plain_jpeg(path)
        if found is None:
            view = self.store.train_view(position, self.spec, self.crop, rng)
            return np.array(b"", object), np.bool_(False), _NO_BOX, np.int32(0), np.bool_(False), view
        content, height, width = found
        box = resized_crop_box(height, width, self.spec.random_resized_crop, rng)
        flip = bool(self.spec.hflip and rng.random() < 0.5)  # drawn after the box, as data.train_views
        reduction = draft_reduction(width, height, box_min_side(height, width, box, self.crop))
        if reduction > 1:  # libjpeg's reduced size is ceil(side / reduction), as PIL's draft
            shape = (-(-height // reduction), -(-width // reduction))
            box = scaled_box(box, shape[0] / height, shape[1] / width, shape)
        return (np.array(content, object), np.bool_(True), np.asarray(box, np.int32),
                np.int32(RATIOS.index(reduction)), np.bool_(flip), _NO_VIEW)

    def view(self, index: tf.Tensor, epoch: int, forced: Set[int] = frozenset()) -> tf.Tensor:
        """The uint8 crop x crop x 3 view of store row `index` (int64 scalar tensor) for `epoch`."""
        content, decode, box, ratio, flip, finished = tf.numpy_function(
            lambda i: self.plan(int(i), epoch, forced), [index],
            [tf.string, tf.bool, tf.int32, tf.int32, tf.bool, tf.uint8], stateful=False)
        for tensor in (content, decode, ratio, flip):
            tensor.set_shape([])
        box.set_shape([4])
        out = tf.cond(decode, lambda: self._decoded(content, box, ratio, flip), lambda: finished)
        return tf.ensure_shape(out, [self.crop, self.crop, 3])

    def _decoded(self, content: tf.Tensor, box: tf.Tensor, ratio: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
        """Only the box decoded (at the plan's DCT scale), resized with antialias, rounded, flipped."""
        branches = [functools.partial(tf.io.decode_and_crop_jpeg, content, box, channels=3, ratio=r, dct_method=IDCT)
                    for r in RATIOS]
        pixels = tf.switch_case(ratio, branches)
        resized = tf.image.resize(pixels, (self.crop, self.crop), method="bilinear", antialias=True)
        out = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
        return tf.cond(flip, lambda: tf.reverse(out, axis=[1]), lambda: out)
