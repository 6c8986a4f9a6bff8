"""Export the PyTorch model: ONNX (dynamo exporter), TorchScript and torch.export `.pt2`.

Input: float32 NCHW, batch size free, height and width fixed at the bundle's input size.
Output: logits. The model is exported in eval mode (dropout off, BatchNorm running statistics).
Called by alexnet_lab.inference.export in a process of its own; the metadata is stored in each file.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.exports import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME, input_size
from alexnet_lab.frameworks import build_for

METADATA_FILE = "alexnet_lab.json"  # extra file inside .torchscript.pt / .pt2 archives


def _model_and_example(bundle: WeightBundle) -> tuple[torch.nn.Module, torch.Tensor]:
    model = build_for(bundle, "torch", device="cpu").eval()
    size = input_size(bundle.meta)
    # batch 2, not 1: torch.export specialises sizes 0 and 1 instead of keeping them symbolic
    return model, torch.zeros(2, 3, size, size)


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("batch", min=1)},)


def write_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, metadata: Mapping[str, str]) -> None:
    """ONNX of `module` through torch.export (the dynamo exporter), opset ONNX_OPSET, with a free
    batch dimension and `metadata` in metadata_props. The one ONNX route: the Keras model on the
    torch backend is a torch.nn.Module and comes here too (frameworks/keras/export.py)."""
    program = torch.onnx.export(module, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes=_dynamic_batch(), opset_version=ONNX_OPSET, dynamo=True,
                                verbose=False)
    program.model.metadata_props.update(metadata)
    program.save(str(path))


def export_onnx(bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """ONNX of the PyTorch model (NCHW input)."""
    write_onnx(*_model_and_example(bundle), path, metadata)


def export_torchscript(bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """A traced TorchScript module (torch.jit.load); the metadata is the archive's extra file."""
    model, example = _model_and_example(bundle)
    with warnings.catch_warnings():  # asked for by name: torch.jit's deprecation notice is no news here
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, example)  # no data-dependent control flow: tracing is exact
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(dict(metadata))})


def export_torch_export(bundle: WeightBundle, path: Path, metadata: Mapping[str, str]) -> None:
    """A torch.export ExportedProgram (torch.export.load) with a dynamic batch dimension."""
    model, example = _model_and_example(bundle)
    program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())
    torch.export.save(program, str(path), extra_files={METADATA_FILE: json.dumps(dict(metadata))})


EXPORTERS: dict[str, Callable[[WeightBundle, Path, Mapping[str, str]], None]] = {
    "onnx": export_onnx,
    "torchscript": export_torchscript,
    "torch-export": export_torch_export,
}
