"""Keras measurements: our AlexNet through the trainer's own step (train.keras.steps.PhaseStep),
and the plain reference, a Sequential AlexNet with model.fit (jit_compile="auto") as people write it."""

from __future__ import annotations

import time

import keras
import numpy as np

from alexnet_lab.bench.settings import BenchSettings, inference_speed, int8_speed, peak_rss_mb, timed


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


def _ours(settings: BenchSettings, precision, x: np.ndarray, y: np.ndarray):
    """`alexnet train --framework keras`'s own compiled step (train.keras.trainer.build_step) under
    the policy `--precision auto` picks; returns (model, seconds per step)."""
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.keras.trainer import build_step

    config = RunConfig(variant=settings.variant, batch_size=settings.batch, lr=0.01)  # its framework is the step builder's
    model, step = build_step(config, settings.classes, settings.size, precision)
    step.set_lr(1.0)
    xs, ys = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    return model, timed(lambda: step.run(xs, ys), settings.warmup, settings.train_steps)


def _reference(settings: BenchSettings, x: np.ndarray, y: np.ndarray, jit):
    """The plain Sequential model in float32 with model.compile and model.fit; returns (model,
    seconds per step)."""
    model = reference_model(settings)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=jit)
    steps = settings.warmup + settings.train_steps
    clock = StepClock(first=settings.warmup)
    model.fit(np.repeat(x, steps, axis=0), np.repeat(y, steps), batch_size=settings.batch, epochs=1, verbose=0,
              shuffle=False, callbacks=[clock])
    return model, clock.seconds_per_step()


def measure(impl: str, settings: BenchSettings) -> dict:
    """Train and inference throughput, batch-1 latency and peak RSS of one implementation.

    Ours times `alexnet train --framework keras`'s own step with its defaults here (the
    mixed-precision policy `--precision auto` picks, its optimizer) and infers as `alexnet predict
    --framework keras` does by default (float32); where `--precision auto` picks bf16 for inference, that path (the model
    rebuilt with bfloat16 weights) is measured too, under the `bf16_` keys.
    """
    from alexnet_lab.frameworks.keras.device import resolve_device
    from alexnet_lab.train.keras.precision import KerasPrecision, resolve_precision

    device = resolve_device(settings.device)
    precision = resolve_precision("auto", device) if impl == "ours" else KerasPrecision("fp32")
    # XLA measured slower for this model on the CPU (docs/performance.md, XLA); "auto" leaves the
    # choice to Keras, which does not XLA-compile on the CPU here. Ours: the trainer's tf.function, no XLA
    jit = "auto" if impl == "reference" else False
    rng = np.random.default_rng(0)
    x = rng.standard_normal((settings.batch, settings.size, settings.size, 3), dtype=np.float32)
    y = rng.integers(0, settings.classes, settings.batch)
    model, train_s = _ours(settings, precision, x, y) if impl == "ours" else _reference(settings, x, y, jit)
    if precision.name != "fp32":  # predict's default is float32: the trained weights in a float32 model
        model = _float32_copy(model, settings)
    result = {"train_img_s": settings.batch / train_s, **_inference_speed(model, x, settings),
              "peak_rss_mb": peak_rss_mb(), "backend": keras.backend.backend(), "jit_compile": jit,
              "device": device, "train_precision": precision.name, "train_policy": precision.policy,
              "infer_precision": "fp32", "layout": "nhwc"}
    if impl == "ours":
        result.update(_measure_bf16_inference(model, x, settings, device))
    if impl == "ours" and device == "cpu" and keras.backend.backend() == "tensorflow":
        result.update(_measure_int8(model, x, settings))
    return result


def _float32_copy(model: keras.Model, settings: BenchSettings) -> keras.Model:
    from alexnet_lab.frameworks import keras as keras_backend

    copy = keras_backend.build_model(settings.variant, settings.classes, input_size=settings.size)
    copy.set_weights([np.asarray(w, np.float32) for w in model.get_weights()])
    return copy


def _inference_speed(model: keras.Model, x: np.ndarray, settings: BenchSettings) -> dict:
    return inference_speed(model.predict_on_batch, x, settings)


def _measure_bf16_inference(model: keras.Model, x: np.ndarray, settings: BenchSettings, device: str) -> dict:
    """`predict --framework keras --precision auto` where it picks bf16: bfloat16 weights."""
    from alexnet_lab.frameworks.keras.model import auto_inference_precision, cast_for_inference

    if auto_inference_precision(device) != "bf16":
        return {}
    speed = _inference_speed(cast_for_inference(model, "bf16"), x, settings)
    return {"bf16_infer_img_s": speed["infer_img_s"], "bf16_latency_ms": speed["latency_ms"]}


def _measure_int8(model, x: np.ndarray, settings: BenchSettings) -> dict:
    """Inference throughput and batch-1 latency of the int8 TensorFlow Lite model (--precision int8),
    calibrated on the benchmark batch itself: only its speed is measured here, its accuracy in the
    tests. Converting takes about a minute for owt and is not timed; peak RSS is read before it."""
    from alexnet_lab.frameworks.keras.quantize import predict_logits_int8, quantize_int8

    start = time.perf_counter()
    quantized = quantize_int8(model, x)
    convert_s = time.perf_counter() - start
    return {**int8_speed(predict_logits_int8, quantized, x, settings), "int8_engine": "tflite-xnnpack",
            "int8_convert_s": convert_s}
