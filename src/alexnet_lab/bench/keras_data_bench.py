"""`alexnet benchmark --data FOLDER --frameworks keras`: real photos through the Keras training input
on TensorFlow, ours beside a plain tf.data recipe, one process per measurement (bench.worker).

- ours: `alexnet train --framework keras`'s streamed store (data.stream), its whole-photo views in
  tf.data (train.keras.photo_views), the batch normalisation and prefetch of train.keras.data,
  the model and compiled step `alexnet train` builds (train.keras.trainer.build_step: PhaseStep)
  under the `--precision auto` policy;
- reference: what a Keras user writes: tf.data over the file list, shuffle, read_file +
  decode_jpeg, sample_distorted_bounding_box (area 0.08-1, aspect 3/4-4/3, 10 attempts, the whole
  image as fallback) + slice + tf.image.resize, random_flip_left_right, /255 and mean / std per
  sample, batch, prefetch (AUTOTUNE parallelism); the hand-written Sequential AlexNet of
  bench.keras_bench under the same policy, trained by model.fit with the optimizer settings
  `alexnet train` uses by default (bench.settings.reference_sgd; Keras' SGD decays every weight).

The same figures as bench.data_bench: `loader_img_s`, `train_img_s`, `step_img_s`, `fed` and
`view_img_s_per_core` (one sample's decode + augment, images per CPU-second of a one-thread map).
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from alexnet_lab.bench.settings import BenchSettings, reference_sgd

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _one_thread(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def _per_core(views: tf.data.Dataset, count: int) -> float:
    """Samples per CPU-second of a one-call, one-thread map: other processes' load does not count."""
    batches = iter(_one_thread(views))
    next(batches)
    start = time.process_time()
    for _ in range(count):
        next(batches)
    return count / (time.process_time() - start)


def _loader_alone(make_batches) -> float:
    """Images/s after the first batch (the pipeline's start-up is left out)."""
    batches = iter(make_batches())
    next(batches)
    start, count = time.perf_counter(), 0
    for images, _ in batches:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def _ours(settings: BenchSettings, index, precision):
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data import IMAGENET_AUGMENT
    from alexnet_lab.data.datasets import normalisation
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.keras.data import StorePipeline
    from alexnet_lab.train.keras.trainer import build_step

    pipeline = StorePipeline(StreamedImages(index.paths, TORCHVISION_IMAGENET), index.labels, settings.size,
                             normalisation(TORCHVISION_IMAGENET), IMAGENET_AUGMENT, seed=0)
    config = RunConfig(variant=settings.variant, batch_size=settings.batch, lr=0.01)  # its framework is the step builder's
    _, step = build_step(config, len(index.class_names), settings.size, precision)  # the trainer's own step
    step.set_lr(1.0)
    positions = np.arange(settings.view_samples + 1) % len(pipeline)
    return (lambda: pipeline.batches(settings.batch, epoch=0), pipeline.views(positions, 0, parallel=1),
            step.run, None)


def _recipe_view(path, label, size: int):
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    begin, box_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([0, 0, 4]), min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
    image = tf.image.resize(tf.slice(image, begin, box_size), (size, size))
    image = tf.image.random_flip_left_right(image)
    return (image / 255.0 - MEAN) / STD, label


def _reference(settings: BenchSettings, index, precision):
    from alexnet_lab.bench.keras_bench import reference_model
    from alexnet_lab.train.keras.precision import dtype_policy

    files = tf.data.Dataset.from_tensor_slices((list(index.paths), np.asarray(index.labels, np.int64)))

    def recipe():
        shuffled = files.shuffle(len(index.paths), seed=0)
        mapped = shuffled.map(lambda p, y: _recipe_view(p, y, settings.size), num_parallel_calls=tf.data.AUTOTUNE)
        return mapped.batch(settings.batch).prefetch(tf.data.AUTOTUNE)

    with dtype_policy(precision):
        model = reference_model(dataclasses.replace(settings, classes=len(index.class_names)))
    model.compile(optimizer=keras.optimizers.SGD(0.01, **reference_sgd()),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    views = files.repeat().map(lambda p, y: _recipe_view(p, y, settings.size)).take(settings.view_samples + 1)
    return recipe, views, lambda x, y: model.train_on_batch(x, y), model


def measure_data(impl: str, settings: BenchSettings, folder: str) -> dict:
    """The five figures of one side (module docstring), in this process."""
    from alexnet_lab.bench.keras_bench import StepClock
    from alexnet_lab.data import read_class_folder
    from alexnet_lab.frameworks.keras.device import resolve_device
    from alexnet_lab.train.keras.precision import resolve_precision

    index = read_class_folder(folder)
    precision = resolve_precision("auto", resolve_device(settings.device))
    make_batches, views, step, fitted = (_ours if impl == "ours" else _reference)(settings, index, precision)
    result = {"view_img_s_per_core": _per_core(views, settings.view_samples),
              "loader_img_s": _loader_alone(make_batches)}
    batches = iter(make_batches())
    first = next(batches)
    step(*first)  # warm-up: tracing, oneDNN primitives
    if fitted is None:  # ours: `alexnet train`'s loop, one compiled step per batch
        start, count = time.perf_counter(), 0
        for images, labels in batches:
            step(images, labels)
            count += int(images.shape[0])
        result["train_img_s"] = count / (time.perf_counter() - start)
    else:  # the reference: model.fit over its pipeline, timed from its second step
        clock = StepClock(first=1)
        fitted.fit(make_batches(), epochs=1, verbose=0, shuffle=False, callbacks=[clock])
        result["train_img_s"] = settings.batch / clock.seconds_per_step()
    start = time.perf_counter()
    for _ in range(settings.train_steps):
        step(*first)
    result["step_img_s"] = settings.train_steps * int(first[0].shape[0]) / (time.perf_counter() - start)
    result["fed"] = result["loader_img_s"] / result["step_img_s"]
    return {**result, "workers": "tf.data autotune", "threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "train_precision": precision.name, "train_policy": precision.policy, "images": len(index.paths),
            "backend": keras.backend.backend()}
