"""Post-training int8 quantization of the Keras model for CPU inference, through TensorFlow Lite.

The model's inference function is frozen and converted with full-integer quantization: weights
per output channel, activations per tensor with ranges observed on calibration images. Layers
without an int8 kernel (LRN) stay float32 between a dequantize and a quantize, as in the PyTorch
path. Input and logits stay float32. TensorFlow Lite's XNNPACK kernels run the result (speed and
conversion time, measured with `alexnet benchmark`: docs/performance.md).

Needs Keras on the TensorFlow backend. TensorFlow marks `tf.lite` as moving to the separate
LiteRT package; the pinned TensorFlow still ships it, and this module is the only place that knows.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.precision import require_calibration

log = logging.getLogger(__name__)


def check_int8() -> None:
    """Raises UserInputError unless Keras runs on TensorFlow (the converter is TensorFlow's)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserInputError(f"--precision int8 with --framework keras needs the TensorFlow backend (KERAS_BACKEND="
                             f"tensorflow); this Keras runs on '{keras.backend.backend()}'. Or use --framework torch.")


@contextlib.contextmanager
def _quiet():
    """tf.lite warns on every interpreter that LiteRT will replace it, and the converter that the
    float input has no quantization statistics (it stays float by design); users act on neither."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(tf\.lite|LiteRT|ai_edge_litert).*")
        warnings.filterwarnings("ignore", message=r"Statistics for quantized inputs were expected")
        yield


def quantize_int8(model, calibration_nhwc: np.ndarray | None, batch_size: int = 32) -> Int8Model:
    """An int8 TensorFlow Lite copy of a Keras AlexNet; `model` itself is left as it is.

    TensorFlow Lite's full-integer converter; the arguments are Backend.quantize_int8's.
    UserInputError also when Keras is not on TensorFlow.
    """
    check_int8()
    require_calibration(calibration_nhwc)
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    height, width = calibration_nhwc.shape[1:3]

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)])
    def logits(images):
        return model(images, training=False)

    frozen = convert_variables_to_constants_v2(logits.get_concrete_function())

    def calibration_batches():
        for start in range(0, len(calibration_nhwc), batch_size):
            yield [np.ascontiguousarray(calibration_nhwc[start : start + batch_size], dtype=np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration_batches
    with _quiet():
        flatbuffer = converter.convert()
    log.info("int8: calibrated for TensorFlow Lite on %d image(s)", len(calibration_nhwc))
    return Int8Model(flatbuffer, model.output_shape[-1])


class Int8Model:
    """A quantized TensorFlow Lite AlexNet with one interpreter per batch size (each one sizes its
    buffers for one input shape; resizing them on every call would cost more than the copy)."""

    def __init__(self, flatbuffer: bytes, num_classes: int) -> None:
        self.flatbuffer = flatbuffer
        self.num_classes = num_classes
        self._by_batch: dict[int, object] = {}

    def interpreter(self, batch: int):
        """The interpreter that serves batches of this size."""
        import os

        import tensorflow as tf

        if batch not in self._by_batch:
            with _quiet():
                interpreter = tf.lite.Interpreter(model_content=self.flatbuffer,
                                                  num_threads=os.cpu_count() or 1)
            entry = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(entry["index"], [batch, *entry["shape"][1:]])
            interpreter.allocate_tensors()
            self._by_batch[batch] = interpreter
        return self._by_batch[batch]

    def __call__(self, batch_nhwc: np.ndarray) -> np.ndarray:
        interpreter = self.interpreter(len(batch_nhwc))
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               np.ascontiguousarray(batch_nhwc, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def predict_logits_int8(model: Int8Model, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (float32 numpy) of a quantize_int8 model for a preprocessed N x H x W x 3 batch."""
    outputs = [model(batch_nhwc[start : start + batch_size]) for start in range(0, len(batch_nhwc), batch_size)]
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0, model.num_classes), np.float32)


