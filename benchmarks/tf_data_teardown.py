"""How long the end of an epoch waits for tf.data: our Keras pipeline with tf.data's autotuner (the
default) next to the same pipeline with fixed parallelism and the autotuner off.

Each simulated epoch is one pass of StorePipeline.batches() over a CIFAR-sized uint8 store (cifar
augmentation, batch 128: 157 batches) with TensorFlow work after each batch standing in for the
training step: 2048x2048 matrix products (about 0.1 s each on 2 cores, at least one per batch)
until the pass has lasted the given number of seconds (so about 20 s at the least here). Then the
iterator is dropped, as the training loop drops it. The wall time from the last batch to the
iterator being gone is the wait; `total_s` adds the epochs and the waits. The stand-in has to
keep the cores busy the way a training step does: with the main thread asleep, or with small
products, the wait hardly shows. Prints one JSON object. Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/tf_data_teardown.py [--epochs 20,40]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from alexnet_lab.data import AugmentSpec  # noqa: E402
from alexnet_lab.train.keras.data import StorePipeline  # noqa: E402

NORM = (np.full(3, 1 / 64, np.float32), np.full(3, -2.0, np.float32), False)


def train_step_stand_in(seconds: float, operand) -> None:
    import tensorflow as tf

    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tf.linalg.matmul(operand, operand).numpy()


def epoch_wait(pipeline: StorePipeline, seconds: float, epoch: int, batch: int = 128) -> dict:
    """One pass lasting about `seconds`, then drop the iterator; the seconds that took."""
    import tensorflow as tf

    operand = tf.random.normal((2048, 2048))
    step = seconds / -(-len(pipeline) // batch)
    batches = pipeline.batches(batch, epoch)
    start = time.perf_counter()
    for _ in batches:
        train_step_stand_in(step, operand)
    last = time.perf_counter()
    del batches
    return {"epoch_s": last - start, "end_wait_s": time.perf_counter() - last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="20,40", help="simulated epoch lengths in seconds")
    args = parser.parse_args()
    lengths = [float(v) for v in args.epochs.split(",")]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    augment = AugmentSpec(random_crop_padding=4, hflip=True)
    result: dict = {}
    for name, autotune in (("autotune", True), ("fixed", False)):
        pipeline = StorePipeline(images, labels, 32, NORM, augment, seed=0, autotune=autotune)
        result[name] = [epoch_wait(pipeline, seconds, epoch) for epoch, seconds in enumerate(lengths)]
    for name in ("autotune", "fixed"):
        result[f"{name}_total_wait_s"] = sum(e["end_wait_s"] for e in result[name])
        result[f"{name}_total_s"] = sum(e["epoch_s"] + e["end_wait_s"] for e in result[name])
    result["settings"] = {"epochs_s": lengths, "batch": 128, "store": list(images.shape)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
