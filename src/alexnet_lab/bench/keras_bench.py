"""Keras measurements: our AlexNet and the plain reference, a Sequential AlexNet with model.fit as
people write it; both compiled with jit_compile="auto"."""

from __future__ import annotations

import time

import keras
import numpy as np

from alexnet_lab.bench.settings import BenchSettings, int8_speed, peak_rss_mb, timed


def reference_model(settings: BenchSettings):
    """The usual hand-written Keras AlexNet (torchvision's layer sizes), channels last."""
    from keras import layers

    return keras.Sequential([
        keras.Input((settings.size, settings.size, 3)),
        layers.ZeroPadding2D(2), layers.Conv2D(64, 11, strides=4, activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Conv2D(192, 5, padding="same", activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Conv2D(384, 3, padding="same", activation="relu"),
        layers.Conv2D(256, 3, padding="same", activation="relu"),
        layers.Conv2D(256, 3, padding="same", activation="relu"), layers.MaxPooling2D(3, 2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(4096, activation="relu"), layers.Dropout(0.5),
        layers.Dense(4096, activation="relu"), layers.Dense(settings.classes),
    ])


class StepClock(keras.callbacks.Callback):
    """Seconds per training step inside one model.fit call, from the start of step `first` to the
    end of the last. fit's set-up and the end of its epoch are left out: dropping fit's tf.data
    iterator waits for tf.data's autotuner thread, by a few seconds that depend on when it last
    woke (it doubled the time of a 5-step fit in some runs and not in others), which is a cost
    per epoch, not per step (measured for our own pipeline in benchmarks/tf_data_teardown.py)."""

    def __init__(self, first: int):
        super().__init__()
        self.first, self.start, self.end, self.steps = first, 0.0, 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.first:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.first:
            self.end, self.steps = time.perf_counter(), self.steps + 1

    def seconds_per_step(self) -> float:
        return (self.end - self.start) / self.steps


def measure(impl: str, settings: BenchSettings) -> dict:
    from alexnet_lab import keras_backend
    from alexnet_lab.keras_backend.device import resolve_device

    device = resolve_device(settings.device)

    model = reference_model(settings) if impl == "reference" else keras_backend.build_model(
        settings.variant, settings.classes, input_size=settings.size)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # XLA measured slower on this CPU (inference 46-64 img/s with jit_compile=True, 76-93 without);
    # "auto" leaves the choice to Keras, which does not XLA-compile on the CPU here
    jit = "auto"
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((settings.batch, settings.size, settings.size, 3), dtype=np.float32)
    y = rng.integers(0, settings.classes, settings.batch)
    steps = settings.warmup + settings.train_steps
    clock = StepClock(first=settings.warmup)
    model.fit(np.repeat(x, steps, axis=0), np.repeat(y, steps), batch_size=settings.batch, epochs=1, verbose=0,
              shuffle=False, callbacks=[clock])
    train_s = clock.seconds_per_step()
    predict = model.predict_on_batch
    infer_s = timed(lambda: predict(x), settings.warmup, settings.infer_steps)
    latency_s = timed(lambda: predict(x[:1]), settings.warmup, settings.latency_runs)
    result = {"train_img_s": settings.batch / train_s, "infer_img_s": settings.batch / infer_s,
              "latency_ms": 1000 * latency_s, "peak_rss_mb": peak_rss_mb(), "backend": keras.backend.backend(),
              "jit_compile": jit, "device": device}
    if impl == "ours" and device == "cpu" and keras.backend.backend() == "tensorflow":
        result.update(_measure_int8(model, x, settings))
    return result


def _measure_int8(model, x: np.ndarray, settings: BenchSettings) -> dict:
    """Inference throughput and batch-1 latency of the int8 TensorFlow Lite model (--precision int8),
    calibrated on the benchmark batch itself: only its speed is measured here, its accuracy in the
    tests. Converting takes about a minute for owt and is not timed; peak RSS is read before it."""
    from alexnet_lab.keras_backend.quantize import predict_logits_int8, quantize_int8

    start = time.perf_counter()
    quantized = quantize_int8(model, x)
    convert_s = time.perf_counter() - start
    return {**int8_speed(predict_logits_int8, quantized, x, settings), "int8_engine": "tflite-xnnpack",
            "int8_convert_s": convert_s}
