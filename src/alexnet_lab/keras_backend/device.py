"""Device choice for Keras: TensorFlow places ops itself; `cpu` hides the GPUs from it."""

from __future__ import annotations

import keras

from alexnet_lab.core.errors import UserInputError


def available_devices() -> list[str]:
    if keras.backend.backend() != "tensorflow":
        return ["cpu"]
    import tensorflow as tf

    return ["cpu"] + [f"gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def _hide_gpus() -> None:
    """Hide the GPUs from TensorFlow; a second call (once TensorFlow has started) is a no-op when
    they are already hidden, and an error when they are not, since that can no longer change."""
    import tensorflow as tf

    if not tf.config.get_visible_devices("GPU"):
        return
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        raise UserInputError("--device cpu must be chosen before TensorFlow starts using the GPU; pass it on the "
                             "command line, or call resolve_device('cpu') first.") from None


def resolve_device(name: str = "auto") -> str:
    """Apply --device for Keras and return the device ops will run on ('cpu' or 'gpu:N').

    Raises:
        UserInputError: a GPU was asked for and there is none (the message lists what there is).
    """
    available = available_devices()
    if name in ("auto", "cuda", "gpu"):
        if name != "auto" and len(available) == 1:
            raise UserInputError(f"device '{name}' is not available to Keras here; available: {', '.join(available)}.")
        return available[1] if len(available) > 1 else "cpu"
    if name == "cpu":
        if len(available) > 1:
            _hide_gpus()
        return "cpu"
    raise UserInputError(f"device '{name}' is not available to Keras here; available: {', '.join(available)}.")
