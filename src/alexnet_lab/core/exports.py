"""What an export is, framework-neutrally: the export formats, the input and output names and
layouts, the metadata stored inside every export, and the rule that exports are write-only.

The work of exporting is in :mod:`alexnet_lab.inference.export` (the process around it) and in
each framework's ``export`` module (tracing and writing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from alexnet_lab.core.bundle import ModelMeta
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.version import __version__

EXPORT_METADATA_FORMAT = "alexnet-lab/export"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
ONNX_OPSET = 18  # run by onnxruntime >= 1.14, TensorRT 10 and OpenVINO


@dataclass(frozen=True)
class ExportFormat:
    """An export target and how it is named. Which of our models it can hold, and the environment
    of the process that writes it, are each framework's facts (frameworks.registry: exports)."""

    name: str
    description: str
    suffixes: tuple[str, ...]  # file-name endings that choose it; none for a folder format
    folder: bool = False


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("onnx", "ONNX", (".onnx",)),
        ExportFormat("torchscript", "TorchScript", (".torchscript.pt",)),
        ExportFormat("torch-export", "torch.export program", (".pt2",)),
        ExportFormat("savedmodel", "TensorFlow SavedModel", (), folder=True),
    )
}


def refuse_export_input(path: Path) -> None:
    """Raise a clear error when `path` is one of our export formats (they are write-only)."""
    name = path.name.lower()
    for f in EXPORT_FORMATS.values():
        is_export = (path / "saved_model.pb").is_file() if f.folder else bool(f.suffixes) and name.endswith(f.suffixes)
        if is_export:
            raise UserInputError(
                f"'{path}' is an export ({f.description}); exports are write-only (a traced graph, not weights): "
                "pass the weight file, run folder or registry name it was exported from."
            )


def input_size(meta: ModelMeta) -> int:
    """The square input height and width an export is traced at (the preprocessing's crop)."""
    return meta.input_size or meta.preprocess.crop


def input_shape(meta: ModelMeta, layout: str) -> list[str | int]:
    """The export's input shape, 'batch' first: [batch, 3, H, W] (NCHW) or [batch, H, W, 3] (NHWC)."""
    size = input_size(meta)
    return ["batch", 3, size, size] if layout == "NCHW" else ["batch", size, size, 3]


def export_metadata(meta: ModelMeta, framework: str, layout: str, weights_sha256: str = "") -> dict[str, str]:
    """Flat str -> str metadata stored in every export: what a deployer needs to feed it."""
    return {
        "format": EXPORT_METADATA_FORMAT,
        "format_version": "1",
        "producer": f"alexnet-lab {__version__}",
        "framework": framework,
        "variant": meta.variant,
        "num_classes": str(meta.num_classes),
        "categories": json.dumps(list(meta.categories)),
        "preprocess": json.dumps(meta.preprocess.to_dict()),
        "preprocess_summary": meta.preprocess.describe(),
        "input_name": INPUT_NAME,
        "input_layout": layout,  # the framework's (frameworks.registry: input_layout)
        "input_shape": json.dumps(input_shape(meta, layout)),
        "input_dtype": "float32",
        "input_channel_order": meta.preprocess.channel_order,
        "output_name": OUTPUT_NAME,
        "output": f"logits, shape [batch, {meta.num_classes}]; softmax gives probabilities",
        "source": meta.source,
        "source_sha256": meta.source_sha256,
        "weights_sha256": weights_sha256,  # the weight file exported (for a run: its best.safetensors)
    }
