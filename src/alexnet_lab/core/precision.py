"""Precision choices, framework-neutral: which precisions training and inference accept, and
the one rule `auto` follows on every framework.

Training computes in a mixed precision (autocast / a Keras mixed policy; weights stay float32),
chosen by `alexnet train --precision` from TRAIN_PRECISIONS. Inference holds the weights
themselves in the chosen type, chosen by `alexnet predict|evaluate --precision` from
INFERENCE_PRECISIONS; int8 is inference only, fp16 training only (on GPUs).
"""

from __future__ import annotations

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.hardware import cpu_has_native_bf16

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INFERENCE_PRECISIONS = ("fp32", "bf16", "int8", "auto")
NEEDS_CALIBRATION = ("--precision int8 needs calibration images: pass --calibration FOLDER (a few hundred images "
                     "like the ones to classify).")


def train_precision(name: str, device_type: str, gpu_has_bf16: bool = False) -> str:
    """What `auto` (or an explicit choice) means for training on a device of `device_type`.

    auto: bf16 on GPUs that compute it (fp16 on older ones), bf16 on CPUs with native bf16
    (AVX512-BF16 or AMX), fp32 elsewhere (Apple MPS included).

    Args:
        name: one of TRAIN_PRECISIONS.
        device_type: 'cpu', 'gpu' (CUDA, either framework) or 'mps'.
        gpu_has_bf16: whether the GPU computes bf16 (compute capability 8.0 or newer).

    Raises:
        UserInputError: an unknown name, or fp16 asked for off a GPU.
    """
    if name not in TRAIN_PRECISIONS:
        raise UserInputError(f"training --precision takes {', '.join(TRAIN_PRECISIONS)}; received '{name}'.")
    if name == "auto":  # inference's rule, except that a GPU without bf16 trains in fp16
        return "fp16" if device_type == "gpu" and not gpu_has_bf16 else inference_auto(device_type, gpu_has_bf16)
    if name == "fp16" and device_type == "cpu":
        raise UserInputError("--precision fp16 is for GPUs; use bf16 or fp32 on the CPU.")
    return name


def inference_auto(device_type: str, gpu_has_bf16: bool = False) -> str:
    """What inference's `auto` runs: bf16 where the device computes it natively, else fp32
    (exact). Unlike training, never fp16: a GPU without bf16 runs fp32."""
    if device_type == "gpu":
        return "bf16" if gpu_has_bf16 else "fp32"
    return "bf16" if device_type == "cpu" and cpu_has_native_bf16() else "fp32"


def require_calibration(calibration) -> None:
    """int8 sets its activation ranges from calibration images; refuse to start without any.

    Raises:
        UserInputError: `calibration` is None or empty (NEEDS_CALIBRATION says what to pass).
    """
    if calibration is None or len(calibration) == 0:
        raise UserInputError(NEEDS_CALIBRATION)
