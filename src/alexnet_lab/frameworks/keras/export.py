"""Export the Keras model: ONNX (on KERAS_BACKEND=torch) and TensorFlow SavedModel (on tensorflow).

Input: float32 NHWC (channels last, as the Keras model is built), batch size free, height and
width fixed at the bundle's input size. Output: logits. Inference mode (training=False).
Called by alexnet_lab.inference.export in a process whose KERAS_BACKEND it has set.

ONNX: Keras' own `model.export(format="onnx")` needs tf2onnx on the TensorFlow backend (not
installed), and on the torch backend it falls back to torch's deprecated TorchScript exporter
whenever the batch is dynamic. A Keras model on the torch backend is a torch.nn.Module, so it
goes through the same torch.export-based exporter as the PyTorch model instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import keras

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.exports import INPUT_NAME, OUTPUT_NAME, input_size
from alexnet_lab.frameworks import build_for

SAVEDMODEL_METADATA = "assets.extra/alexnet_lab.json"  # TF Serving's place for files its loader ignores


def _require_backend(name: str, fmt: str) -> None:
    if keras.backend.backend() != name:
        raise UserInputError(f"the Keras {fmt} export runs on KERAS_BACKEND={name}; this process has "
                             f"{keras.backend.backend()}. Use `alexnet convert`, which starts the right process.")


def export_onnx(bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """ONNX of the Keras model through torch.onnx (dynamo exporter), opset ONNX_OPSET."""
    import torch

    from alexnet_lab.frameworks.torch.export import write_onnx  # the same exporter as the PyTorch model's

    _require_backend("torch", "ONNX")
    model = build_for(bundle, "keras", device="cpu")

    class Serving(torch.nn.Module):  # one positional tensor in, as torch.export wants it
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x, training=False)

    size = input_size(bundle.meta)
    example = torch.zeros(2, size, size, 3)  # batch 2: torch.export specialises a batch of 1
    write_onnx(Serving().eval(), example, path, metadata)


def export_savedmodel(bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """A SavedModel folder whose `serving_default` signature maps {'input'} to {'logits'}."""
    import tensorflow as tf

    _require_backend("tensorflow", "SavedModel")
    model = build_for(bundle, "keras", device="cpu")
    size = input_size(bundle.meta)
    archive = keras.export.ExportArchive()  # what model.export(format="tf_saved_model") uses, with our names
    archive.track(model)
    archive.add_endpoint("serve", lambda x: {OUTPUT_NAME: model(x, training=False)},
                         input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME)])
    archive.write_out(str(path), verbose=False)
    extra = path / SAVEDMODEL_METADATA
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text(json.dumps(dict(metadata), indent=2))


EXPORTERS: dict[str, Callable[[WeightBundle, Path, Mapping[str, str]], None]] = {
    "onnx": export_onnx,
    "savedmodel": export_savedmodel,
}
