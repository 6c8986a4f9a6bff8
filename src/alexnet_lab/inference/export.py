"""Deployment exports: ONNX, TorchScript, torch.export (`.pt2`) and TensorFlow SavedModel.

`alexnet convert WEIGHTS OUT --to onnx|torchscript|torch-export|savedmodel` writes a model that
runs without this package, with the variant, class names and preprocessing stored inside it.
Each export runs in a fresh process (`python -m alexnet_lab.inference.export ...`): PyTorch and
TensorFlow never share one, and the Keras backend is fixed before Keras is first imported.
Exports hold a traced graph, not the canonical weights, so they are write-only: they are
refused as input. What an export is (formats, names, metadata) is in core/exports.py; the tracing
and writing is each framework's `export` module (the Backend protocol's `EXPORTERS`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alexnet_lab.core import exports
from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, UserInputError, unknown_name_error
from alexnet_lab.core.exports import EXPORT_FORMATS, ExportFormat, input_size, refuse_export_input
from alexnet_lab.core.fileio import check_output, sha256_file
from alexnet_lab.frameworks import ENTRIES, check_framework, get_backend
from alexnet_lab.frameworks.registry import export_frameworks
from alexnet_lab.weights.files import FORMAT_SUFFIXES, chosen_format, run_weights_file
from alexnet_lab.weights.formats.safetensors_io import read_safetensors, write_safetensors
from alexnet_lab.weights.hub_folder import HUB_FORMAT

log = logging.getLogger(__name__)

INPUT_LAYOUTS = {name: entry.input_layout for name, entry in ENTRIES.items()}  # each framework's model, as trained


def input_shape(meta: ModelMeta, framework: str) -> list[str | int]:
    """The export's input shape for the framework's model, 'batch' first."""
    return exports.input_shape(meta, INPUT_LAYOUTS[framework])


def export_metadata(meta: ModelMeta, framework: str, weights_sha256: str = "") -> dict[str, str]:
    """core.exports.export_metadata with the framework's input layout."""
    return exports.export_metadata(meta, framework, INPUT_LAYOUTS[framework], weights_sha256)

__all__ = ["EXPORT_FORMATS", "INPUT_LAYOUTS", "ExportFormat", "check_output_path", "export_framework", "export_frameworks",
           "export_metadata",
           "export_model", "input_shape", "input_size", "output_format", "output_kind", "refuse_export_input",
           "weights_digest"]

def output_format(path: Path, to: str | None = None) -> str:
    """The format `alexnet convert` writes: `to` when given, else from the file name.

    Returns a weight format (weights.FORMAT_SUFFIXES), an export format (EXPORT_FORMATS) or
    'hf' (a Hub-ready folder, weights.hub_folder; only with --to).
    """
    valid = [*FORMAT_SUFFIXES, *EXPORT_FORMATS, HUB_FORMAT]
    return chosen_format(path, to, valid, _format_of_name(path), "output format (--to)", _conventional)


# names a format is commonly given besides its own suffixes: TorchScript files are often 'model.pt'
CONVENTIONAL_NAMES = {"torchscript": (".pt", ".pth")}


def _conventional(path: Path, to: str) -> bool:
    return path.name.lower().endswith(CONVENTIONAL_NAMES.get(to, ()))


def _format_of_name(path: Path) -> str | None:
    name = path.name.lower()
    # export endings first: '.torchscript.pt' also ends in the weight format's '.pt'
    endings = [*((f.name, f.suffixes) for f in EXPORT_FORMATS.values()), *FORMAT_SUFFIXES.items()]
    return next((fmt for fmt, suffixes in endings if suffixes and name.endswith(suffixes)), None)


def export_framework(fmt: str, framework: str | None) -> str:
    """The model an export holds: `framework`, or the format's default when it is None."""
    allowed = export_frameworks(fmt)
    if framework is None:
        return allowed[0]
    if check_framework(framework) not in allowed:
        raise UserInputError(
            f"--to {fmt} exports the {' or '.join(allowed)} model, not the {framework} one; received "
            f"--framework {framework}. Drop --framework, or use --to "
            f"{' or '.join(f for f in EXPORT_FORMATS if framework in export_frameworks(f))} for the {framework} model."
        )
    return framework


def output_kind(fmt: str) -> str:
    """'folder' for an export written as a folder (SavedModel), else 'file' (core.fileio.check_output's kind)."""
    return "folder" if EXPORT_FORMATS[fmt].folder else "file"


def check_output_path(path: Path, fmt: str) -> None:
    """Refuse a folder an export would wrongly replace: only an empty one or an earlier SavedModel is
    replaced as a whole (with --force); core.fileio.check_output does the rest of the output policy."""
    if EXPORT_FORMATS[fmt].folder and path.is_dir():
        if any(path.iterdir()) and not (path / "saved_model.pb").is_file():  # never delete someone's folder
            raise UserInputError(f"'{path}' exists and is not a SavedModel folder; pass a new folder name for "
                                 f"--to {fmt}.")


def weights_digest(source: str, meta: ModelMeta) -> str:
    """sha256 of the weight file `source` names (a run folder: its best model); for a registry
    name, the digest of the downloaded file that the weights carry."""
    path = Path(source).expanduser()
    if path.is_dir():
        return sha256_file(run_weights_file(path))
    return sha256_file(path) if path.is_file() else meta.source_sha256


@contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """Yield a path with `path`'s name inside a temporary folder beside it; move it onto `path`
    (file or folder) only when the block succeeds, so no half-written export is ever visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        staged = stage / path.name
        yield staged
        if not staged.exists():
            raise RuntimeError(f"the exporter wrote nothing at {staged}")
        for file in [staged] if staged.is_file() else staged.rglob("*"):  # durable before the rename
            if file.is_file():
                with open(file, "rb+") as fh:
                    os.fsync(fh.fileno())
        previous = stage / ".previous"
        if path.is_dir():  # os.replace cannot replace a folder: move the old SavedModel aside first
            path.rename(previous)
        try:
            os.replace(staged, path)
        except OSError:
            if previous.exists():
                previous.rename(path)
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _worker_env(fmt: str, framework: str) -> dict[str, str]:
    # CPU only: the graph is traced the same either way, and nothing in it gets pinned to a GPU
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.update(dict(dict(ENTRIES[framework].exports)[fmt]))
    return env


def export_model(bundle: WeightBundle, path: str | os.PathLike[str], fmt: str, framework: str | None = None,
                 weights_sha256: str = "") -> Path:
    """Export the bundle's model as `fmt` to `path` (atomically), in a process of its own.

    Args:
        bundle: the weights and their metadata.
        path: output file (a folder for savedmodel).
        fmt: a key of EXPORT_FORMATS.
        framework: which of our models to export ('torch' or 'keras'); None: the format's default.
        weights_sha256: digest of the weight file exported, stored in the metadata.

    Raises:
        UserInputError: a bad format / framework / output path.
        AlexnetLabError: the exporter failed (the message has its last line).
    """
    if fmt not in EXPORT_FORMATS:
        raise unknown_name_error("export format", fmt, EXPORT_FORMATS)
    path = Path(path)
    framework = export_framework(fmt, framework)
    check_output_path(path, fmt)
    check_output(path, force=True, kind=output_kind(fmt))  # the API replaces an earlier export; kinds still checked
    if fmt == "onnx":
        import importlib.util

        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise UserInputError(f"--to onnx needs {' and '.join(missing)}: pip install 'alexnet-lab[export]' "
                                 "(or the versions in requirements.lock).")
    metadata = export_metadata(bundle.meta, framework, weights_sha256)
    with tempfile.TemporaryDirectory(prefix="alexnet-export-") as work, _staged(path) as staged:
        weights = write_safetensors(bundle, Path(work) / "weights.safetensors")
        (Path(work) / "metadata.json").write_text(json.dumps(metadata))
        command = [sys.executable, "-m", "alexnet_lab.inference.export", fmt, framework, str(weights),
                   str(Path(work) / "metadata.json"), str(staged)]
        log.info("exporting %s (%s model) in a new process", fmt, framework)
        result = subprocess.run(command, capture_output=True, text=True, env=_worker_env(fmt, framework))
        if result.returncode != 0:
            log.info("exporter output:\n%s", result.stderr)
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("alexnet: error: ")
            raise AlexnetLabError(f"the {fmt} export of the {framework} model failed: {tail} (run `alexnet -v convert "
                                  "...` to see the exporter's output)")
    return path


def _worker(argv: list[str]) -> int:
    """`python -m alexnet_lab.inference.export FORMAT FRAMEWORK WEIGHTS.safetensors METADATA.json OUTPUT`."""
    fmt, framework, weights, metadata_file, output = argv
    bundle = read_safetensors(weights)
    metadata = json.loads(Path(metadata_file).read_text())
    get_backend(framework).EXPORTERS[fmt](bundle, Path(output), metadata)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_worker(sys.argv[1:]))
    except AlexnetLabError as exc:
        print(f"alexnet: error: {exc}", file=sys.stderr)
        sys.exit(2)
