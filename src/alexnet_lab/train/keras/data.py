"""Keras input pipelines over the decoded uint8 stores.

On the TensorFlow backend a tf.data pipeline: the epoch's order is a numpy permutation seeded by
(seed, epoch); each sample is gathered from the store and augmented in TensorFlow ops
(:mod:`.augment_tf`, parallel map, stateless draws keyed by (seed, epoch, index)); batches are
normalised as a whole (x = pixel * scale + offset, BGR flip first) and prefetched.

By default tf.data's autotuner picks the parallelism and prefetch depth. Dropping an autotuned
iterator can wait seconds for the autotuner's thread (3-6 s at the end of 4 of 6 simulated
20-s epochs, benchmarks/tf_data_teardown.py); `autotune=False` (one map call per core, two
batches prefetched, autotuner off) never waits, but its six epochs took 123 s against the autotuned
pipeline's 99 s plus 18 s of waits, so the autotuner stays the default.

On other Keras backends (PyTorch, JAX) TensorFlow is not imported at all, since TensorFlow and
PyTorch in one process can crash: batches come from the numpy reference
(:func:`alexnet_lab.data.datasets.train_view`, the same per-sample seeding as the PyTorch loop).
Either way a resumed run sees exactly the batches the killed run would have seen. Streamed remote
shards (data.remote_shards) are read shard by shard instead, each in stream order, the shards
shuffled by (seed, epoch).

A streamed store (data.stream.StreamedImages) or a memory-mapped cache is never turned into one
tensor: the map reads each sample through tf.numpy_function (the decoding is PIL and BLAS, which
release the GIL, so the parallel map decodes on every core), with the same pixels as the
in-memory store. Training views with a random-resized crop are cut from the whole image, as the
PyTorch loader cuts them: from a streamed store's photos, decoded, cropped, resized and flipped by
TensorFlow in the map (:mod:`.photo_views`; should libjpeg fail on a JPEG whose header passed, that
batch is built again through the PIL path and the epoch goes on); from the decoded cache
(data.ragged.CachedImages), read whole through its own train_view.

Under tf.distribute (--distribute) the same tf.data pipeline of global batches is handed to the
strategy, which splits each batch over the replicas (see :mod:`.distribute`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Set

import keras
import numpy as np

from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.datasets import train_view
from alexnet_lab.data.ragged import CachedImages
from alexnet_lab.data.remote_shards import shard_groups, stream_order
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.data.train_views import uses_whole_image
from alexnet_lab.evaluate.dataset_eval import normalised_batch

log = logging.getLogger(__name__)
JPEG_FAILURE = "jpeg::Uncompress failed"  # how TensorFlow's JPEG decoder reports data libjpeg refuses
Norm = tuple[np.ndarray, np.ndarray, bool]


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one training epoch: depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def uses_tf_data() -> bool:
    return keras.backend.backend() == "tensorflow"


class StorePipeline:
    """Batches of (normalised float32 NHWC, int64 labels) from one uint8 store."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, crop: int, norm: Norm,
                 augment: AugmentSpec | None = None, seed: int = 0, distribute: Callable | None = None,
                 autotune: bool = True):
        """`distribute`: tf.data.Dataset -> distributed dataset (Distribution.distribute_dataset), or None.
        `autotune`: tf.data's autotuned parallelism, or a fixed one with the autotuner off (see the
        module docstring; compared in benchmarks/tf_data_teardown.py)."""
        self.images, self.labels = images, np.asarray(labels, np.int64)
        self.crop, self.norm, self.augment, self.seed = crop, norm, augment, seed
        self.distribute, self.autotune = distribute, autotune
        self._tensors = None

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, epoch: int | None = None) -> Iterator[tuple]:
        """One pass: shuffled and augmented for epoch `epoch`, or in store order when epoch is None."""
        if epoch is None:
            order = np.arange(len(self))
        elif (groups := self._shard_groups()) is not None:  # streamed shards: each shard read forward, once
            order = stream_order(groups, self.seed, epoch)
        else:
            order = epoch_order(len(self), self.seed, epoch)
        if uses_tf_data():
            if epoch is not None and self.whole_photos():
                return self._photo_batches(order, batch_size, epoch)
            return self._iterate(self._tf_dataset(order, batch_size, epoch))
        return self._numpy_batches(order, batch_size, epoch)

    def _shard_groups(self) -> list[list[int]] | None:
        """A streamed store of remote shards' members: its positions by shard (else None)."""
        return shard_groups(self.images.paths) if isinstance(self.images, StreamedImages) else None

    def whole_photos(self) -> bool:
        """True when training views are cut from each whole photo (a streamed store and a random-resized crop)."""
        return (uses_whole_image(self.augment) and isinstance(self.images, StreamedImages)
                and self._shard_groups() is None)  # shard members are read by the PIL path, in stream order

    def _iterate(self, dataset) -> Iterator[tuple]:
        return iter(self.distribute(dataset) if self.distribute is not None else dataset)

    def _photo_batches(self, order: np.ndarray, batch_size: int, epoch: int) -> Iterator[tuple]:
        """The epoch's batches of whole-photo views. libjpeg can still fail on a JPEG whose header
        passed (a corrupt Huffman table); the batch it failed in is then built again with all its
        samples through the PIL path (same boxes and flips; the bad file black), and the epoch goes
        on. The set is per epoch, so a resumed run rebuilds exactly the same batch."""
        import tensorflow as tf

        done, forced = 0, frozenset()
        while True:
            try:
                for batch in self._iterate(self._tf_dataset(order[done:], batch_size, epoch, forced)):
                    done += batch_size
                    yield batch
                return
            except tf.errors.InvalidArgumentError as exc:
                failed = frozenset(int(i) for i in order[done : done + batch_size])
                if failed <= forced or JPEG_FAILURE not in str(exc):  # not libjpeg's, or PIL failed too (--strict)
                    raise
                log.warning("TensorFlow could not decode a JPEG of batch %d of epoch %d; reading that batch "
                            "through PIL", done // batch_size, epoch)
                forced |= failed

    def _numpy_batches(self, order: np.ndarray, batch_size: int, epoch: int | None) -> Iterator[tuple]:
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            if epoch is None or self.augment is None:
                views = self.images[picked]
            elif self._whole_views():
                views = np.stack([self._whole_view(i, epoch) for i in picked])
            else:
                views = np.stack([train_view(self.images[i], self.augment, self.crop,
                                             np.random.default_rng([self.seed, epoch, int(i)])) for i in picked])
            yield normalised_batch(views, self.crop, self.norm), self.labels[picked]

    def views(self, order: np.ndarray, epoch: int | None, forced: Set[int] = frozenset(), parallel=None):
        """tf.data.Dataset of (uint8 crop x crop x 3 view, label) for the store rows in `order`:
        augmented for `epoch`, or the evaluation view when epoch is None. `parallel`: map calls
        (default tf.data.AUTOTUNE, or one per core without the autotuner)."""
        import tensorflow as tf

        if parallel is None:
            parallel = tf.data.AUTOTUNE if self.autotune else os.cpu_count() or 1
        dataset = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
        return dataset.map(self._view_fn(tf, epoch, forced), num_parallel_calls=parallel, deterministic=True)

    def _view_fn(self, tf, epoch: int | None, forced: Set[int]) -> Callable:
        from alexnet_lab.train.keras.augment_tf import augment_image, center_view

        if epoch is not None and self.whole_photos():
            from alexnet_lab.train.keras.photo_views import PhotoViews

            photos, labels = PhotoViews(self.images, self.augment, self.crop, self.seed), tf.constant(self.labels)
            return lambda index: (photos.view(index, epoch, forced), tf.gather(labels, index))
        read = self._reader(tf, epoch)
        augment, crop = self.augment if epoch is not None else None, self.crop
        augmented = augment is not None and self._whole_views()  # read as whole training views already
        epoch_key = tf.constant(self.seed * 1_000_003 + (epoch or 0), tf.int64)

        def view(index):
            image, label = read(index)
            if augment is None:
                image = center_view(image, crop)
            elif not augmented:
                image = augment_image(image, augment, crop, tf.stack([epoch_key, index]))
            return image, label

        return view

    def _tf_dataset(self, order: np.ndarray, batch_size: int, epoch: int | None, forced: Set[int] = frozenset()):
        import tensorflow as tf

        scale, offset, bgr = tf.constant(self.norm[0]), tf.constant(self.norm[1]), self.norm[2]

        def normalise(batch, batch_labels):
            x = tf.cast(batch[..., ::-1] if bgr else batch, tf.float32)
            return x * scale + offset, batch_labels

        parallel = tf.data.AUTOTUNE if self.autotune else os.cpu_count() or 1
        dataset = self.views(order, epoch, forced, parallel).batch(batch_size)
        dataset = dataset.map(normalise, num_parallel_calls=parallel, deterministic=True)
        dataset = dataset.prefetch(tf.data.AUTOTUNE if self.autotune else 2)
        options = tf.data.Options()
        options.autotune.enabled = self.autotune
        return dataset.with_options(options)

    def _whole_views(self) -> bool:
        """True when training views are cut from whole images by the store's own train_view (the
        decoded cache, or a streamed store read outside tf.data's photo path)."""
        return isinstance(self.images, (CachedImages, StreamedImages)) and uses_whole_image(self.augment)

    def _whole_view(self, index, epoch: int) -> np.ndarray:
        """The store's training view of sample `index`, seeded by (seed, epoch, index) as train_view."""
        rng = np.random.default_rng([self.seed, epoch, int(index)])
        return self.images.train_view(int(index), self.augment, self.crop, rng)

    def _reader(self, tf, epoch: int | None = None) -> Callable:
        """index -> (uint8 stored image, label) tensors: a gather from one in-memory tensor copy of
        the store, or a per-sample numpy read of a streamed / memory-mapped one (from the decoded
        cache in a training epoch, the whole training view: _whole_views)."""
        if type(self.images) is np.ndarray:
            if self._tensors is None:  # one copy of the store as tensors, captured by the map function
                self._tensors = (tf.convert_to_tensor(self.images), tf.convert_to_tensor(self.labels))
            images, labels = self._tensors
            return lambda index: (tf.gather(images, index), tf.gather(labels, index))
        store, labels, shape = self.images, tf.constant(self.labels), self.images.shape[1:]
        whole = epoch is not None and self._whole_views()
        shape = (self.crop, self.crop, 3) if whole else shape

        def row(i):
            return self._whole_view(i, epoch) if whole else np.asarray(store[int(i)])

        def read(index):
            image = tf.numpy_function(row, [index], tf.uint8, stateful=False)
            image.set_shape(shape)
            return image, tf.gather(labels, index)

        return read
