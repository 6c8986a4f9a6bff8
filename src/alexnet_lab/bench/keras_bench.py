"""Keras measurements: our AlexNet and the plain reference, a Sequential AlexNet with model.fit as
people write it; both compiled with jit_compile="auto"."""

from __future__ import annotations

import numpy as np

from alexnet_lab.bench.settings import BenchSettings, peak_rss_mb, timed


def reference_model(settings: BenchSettings):
    """The usual hand-written Keras AlexNet (torchvision's layer sizes), channels last."""
    import keras
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


def measure(impl: str, settings: BenchSettings) -> dict:
    import keras

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
    data = (np.repeat(x, steps, axis=0), np.repeat(y, steps))

    def fit_block(n):
        return model.fit(data[0][: n * settings.batch], data[1][: n * settings.batch], batch_size=settings.batch,
                         epochs=1, verbose=0, shuffle=False)

    fit_block(settings.warmup)
    train_s = timed(lambda: fit_block(settings.train_steps), 0, 1) / settings.train_steps
    predict = model.predict_on_batch
    infer_s = timed(lambda: predict(x), settings.warmup, settings.infer_steps)
    latency_s = timed(lambda: predict(x[:1]), settings.warmup, settings.latency_runs)
    return {"train_img_s": settings.batch / train_s, "infer_img_s": settings.batch / infer_s,
            "latency_ms": 1000 * latency_s, "peak_rss_mb": peak_rss_mb(), "backend": keras.backend.backend(),
            "jit_compile": jit, "device": device}
