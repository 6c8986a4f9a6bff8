"""Device choice for Keras: TensorFlow places ops itself; `cpu` hides the GPUs from it.

Also the devices a tf.distribute MirroredStrategy mirrors over (:func:`replica_devices`), with
one testing / experimentation knob: ALEXNET_LAB_KERAS_LOGICAL_CPUS=N splits the CPU into N
logical devices, so --distribute mirrored runs N replicas on a machine without GPUs. It adds no
compute (the replicas share the same cores); it exists to exercise the multi-replica code path
(gradient all-reduce, batch split) where there is only a CPU. It is read only with --distribute.
"""

from __future__ import annotations

import os

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


LOGICAL_CPUS_ENV = "ALEXNET_LAB_KERAS_LOGICAL_CPUS"


def logical_cpu_count() -> int:
    """N from ALEXNET_LAB_KERAS_LOGICAL_CPUS (1 when unset)."""
    text = os.environ.get(LOGICAL_CPUS_ENV, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise UserInputError(f"{LOGICAL_CPUS_ENV} must be a whole number of at least 1; received '{text}'.")
    return int(text)


def split_cpu(count: int) -> None:
    """Split the first CPU into `count` logical TensorFlow devices (/cpu:0 ... /cpu:count-1).

    Raises:
        UserInputError: TensorFlow has already started with another split (it is fixed then).
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if len(current or [None]) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise UserInputError(f"{LOGICAL_CPUS_ENV}={count} must take effect before TensorFlow starts; set it in the "
                             "environment of a fresh process.") from None


def replica_devices(device: str) -> list[str]:
    """The devices of a MirroredStrategy on this machine, for `device` from :func:`resolve_device`:
    every visible GPU (choose them with CUDA_VISIBLE_DEVICES), or else the CPU, split into
    ALEXNET_LAB_KERAS_LOGICAL_CPUS logical devices when that is set."""
    import tensorflow as tf

    if device.startswith("gpu"):
        return [f"/gpu:{i}" for i, _ in enumerate(tf.config.get_visible_devices("GPU"))]
    count = logical_cpu_count()
    if count > 1:
        split_cpu(count)
    return [f"/cpu:{i}" for i in range(count)]


def gpu_has_bf16(device: str) -> bool:
    """Whether the TensorFlow GPU `device` ('gpu:N') computes bf16 (compute capability 8.0+)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    index = int(device.split(":")[1]) if ":" in device else 0
    details = tf.config.experimental.get_device_details(gpus[index]) if index < len(gpus) else {}
    return tuple(details.get("compute_capability", (0, 0))) >= (8, 0)


def device_kind(device: str) -> tuple[str, bool]:
    """(device type in core.precision's terms, whether it is a GPU that computes bf16)."""
    return ("gpu", gpu_has_bf16(device)) if device.startswith("gpu") else ("cpu", False)
