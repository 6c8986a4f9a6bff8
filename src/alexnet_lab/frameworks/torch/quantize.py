"""Post-training int8 quantization for CPU inference, PyTorch (frameworks/keras/quantize.py is the Keras one).

Convolutions and fully connected layers run as int8 kernels (fbgemm / oneDNN through PyTorch's
`x86` engine, VNNI instructions where the CPU has them): weights per output channel, activations
per tensor with ranges observed on calibration images. Layers without an int8 kernel (LRN) run in
float32 between a dequantize and a quantize. Logits stay float32.

Uses PyTorch's FX graph-mode quantization (`torch.ao.quantization`), which the pinned torch
supports but marks as deprecated in favour of torchao; this module is the only place that knows.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings

import numpy as np
import torch

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.precision import require_calibration

log = logging.getLogger(__name__)

# Engines in order of preference: x86 (fbgemm or oneDNN per layer) on Intel/AMD, qnnpack on ARM.
ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")


def int8_engine() -> str:
    """The quantized engine this CPU supports best.

    Raises:
        UserInputError: this torch build has no int8 CPU engine.
    """
    supported = torch.backends.quantized.supported_engines
    engine = next((e for e in ENGINES if e in supported), None)
    if engine is None:
        raise UserInputError("this PyTorch build has no int8 CPU kernels; use --precision fp32.")
    return engine


@contextlib.contextmanager
def _quiet_deprecations():
    """torch.ao.quantization warns on every call that torchao will replace it; users act on nothing here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*(deprecated|reduce_range).*", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated.*")
        yield


def _nchw(batch_nhwc: np.ndarray) -> torch.Tensor:
    # int8 kernels take plain NCHW input: quantizing a channels-last float tensor measured slower
    return torch.from_numpy(np.ascontiguousarray(batch_nhwc)).permute(0, 3, 1, 2).contiguous()


def quantize_int8(model: torch.nn.Module, calibration_nhwc: np.ndarray | None, batch_size: int = 32) -> Int8Model:
    """An int8 copy of `model` for CPU inference; `model` itself is left as it is.

    PyTorch's post-training static quantization (FX graph mode) on the CPU's best int8 engine;
    the arguments are Backend.quantize_int8's. UserInputError also when no engine is built in.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    require_calibration(calibration_nhwc)
    engine = int8_engine()
    torch.backends.quantized.engine = engine
    num_classes = getattr(model, "num_classes", None)
    float_model = copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format).eval()
    with _quiet_deprecations(), torch.no_grad():
        example = (_nchw(calibration_nhwc[:1]),)
        prepared = prepare_fx(float_model, get_default_qconfig_mapping(engine), example)
        for start in range(0, len(calibration_nhwc), batch_size):
            prepared(_nchw(calibration_nhwc[start : start + batch_size]))
        log.info("int8: calibrated for the %s engine on %d image(s)", engine, len(calibration_nhwc))
    return Int8Model(prepared, engine, num_classes)


class Int8Model:
    """A quantized AlexNet that keeps one copy per batch size.

    oneDNN's int8 convolution (the x86 engine's choice on VNNI CPUs) lays its weights out for the
    first input shape it sees and reorders them on every call of any other shape, several times
    slower (docs/performance.md). A copy per batch size keeps every shape on its fast path;
    evaluation uses two (full chunks and the last one), at about 60 MB each.
    """

    def __init__(self, calibrated: torch.nn.Module, engine: str, num_classes: int | None) -> None:
        self.engine = engine
        self.num_classes = num_classes
        self._calibrated = calibrated  # float, with the observed ranges; converted once per batch size
        self._by_batch: dict[int, torch.nn.Module] = {}

    def module(self, batch: int) -> torch.nn.Module:
        """The int8 module that serves batches of this size."""
        from torch.ao.quantization.quantize_fx import convert_fx

        if batch not in self._by_batch:
            with _quiet_deprecations():
                self._by_batch[batch] = convert_fx(copy.deepcopy(self._calibrated))
        return self._by_batch[batch]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.shape[0])(x)


def predict_logits_int8(model: Int8Model, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (float32 numpy) of a quantize_int8 model for a preprocessed N x H x W x 3 batch."""
    outputs = []
    with _quiet_deprecations(), torch.inference_mode():
        for start in range(0, len(batch_nhwc), batch_size):
            outputs.append(model(_nchw(batch_nhwc[start : start + batch_size])).float().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.num_classes), np.float32)


def check_int8() -> None:
    """Raises UserInputError when this PyTorch build has no int8 CPU kernels."""
    int8_engine()
