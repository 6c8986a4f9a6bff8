"""Load and save AlexNet weights in every supported format, through the canonical layout.

`load_weights(source)` takes a registry name (`torchvision` / `imagenet`, `bvlc`), a weight file
(`.safetensors`, `.pth`/`.pt`, `.npy`, `.weights.h5`, `.keras`) or a training run folder, and
returns a WeightBundle; `save_weights(bundle, path, to=...)` writes any format. Conversions
always go source -> canonical -> target. Framework readers are imported only when needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories, imagenet_categories
from alexnet_lab.core.errors import UserInputError, WeightFormatError, unknown_name_error
from alexnet_lab.core.exports import refuse_export_input
from alexnet_lab.core.fileio import regular_file, sha256_file
from alexnet_lab.core.preprocessing import BVLC_CAFFE
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.core.wordnet import imagenet_class_ids
from alexnet_lab.frameworks import weight_io
from alexnet_lab.frameworks.registry import WEIGHT_SUFFIXES, framework_for_suffix
from alexnet_lab.weights import download, hub  # download.fetch: looked up at call time (tests replace it)
from alexnet_lab.weights.formats import limits  # containers are checked against size limits before any parser
from alexnet_lab.weights.formats.caffe_npy import read_caffe_npy, write_caffe_npy
from alexnet_lab.weights.formats.safetensors_io import read_safetensors, write_safetensors
from alexnet_lab.weights.registry import default_preprocess, get_entry, is_registry_name

# output format name -> file name endings it is chosen by; each framework's own format is the
# framework registry's entry (frameworks.WEIGHT_SUFFIXES)
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "safetensors": (".safetensors",),
    **WEIGHT_SUFFIXES,
    "caffe-npy": (".npy",),
}
# file ending -> its container's size and structure check, run before the framework is imported: a
# refusal costs no PyTorch or TensorFlow
CONTAINER_CHECKS: dict[str, Callable[[Path], None]] = {
    ".pth": limits.check_pth,
    ".pt": limits.check_pth,
    ".weights.h5": lambda path: limits.check_h5(path, "alexnet_lab"),
    ".h5": lambda path: limits.check_h5(path, "alexnet_lab"),
    ".keras": lambda path: limits.check_keras_archive(path, "alexnet_lab.json"),
}


def meta_for_file(path: Path) -> Callable[[str, int], ModelMeta]:
    """Metadata for a file that carries none: ImageNet names when it has 1000 classes."""

    def make(variant: str, num_classes: int) -> ModelMeta:
        return ModelMeta(variant, default_categories(num_classes), default_preprocess(variant), source=path.name,
                         source_sha256=sha256_file(path), class_ids=default_class_ids(num_classes))

    return make


def _suffix_of(path: Path) -> str:
    name = path.name.lower()
    for suffixes in FORMAT_SUFFIXES.values():
        for suffix in suffixes:
            if name.endswith(suffix):
                return suffix
    return path.suffix.lower()


def _read_file(path: Path) -> WeightBundle:
    suffix = _suffix_of(path)
    if suffix == ".safetensors":
        return read_safetensors(path)
    if suffix == ".npy":
        tensors = read_caffe_npy(path)
        return WeightBundle(tensors, meta_for_file(path)("original", len(tensors["fc8.bias"])))
    framework = framework_for_suffix(suffix)
    if framework is not None:
        CONTAINER_CHECKS[suffix](path)
        return weight_io.read_weights(framework, path, meta_for_file(path))
    known = ", ".join(s for group in FORMAT_SUFFIXES.values() for s in group)
    raise UserInputError(f"cannot tell the format of '{path}' from its name; expected a file ending in {known}.")


def load_weights(source: str | os.PathLike[str]) -> WeightBundle:
    """Load weights from a registry name, a file, a run folder or a Hub reference (weights.hub).

    Raises:
        UserInputError: the file does not exist, its format is unknown, or it is a write-only export.
        WeightFormatError / LayoutError: the file is unreadable or not AlexNet weights.
    """
    text = str(source)
    if hub.is_hub_ref(text):
        text = str(hub.resolve(text))  # then read like any file
    path = Path(text).expanduser()
    if not path.exists():
        if is_registry_name(text):
            entry = get_entry(text)
            bundle = _read_file(download.fetch(entry))
            return bundle.with_meta(source=entry.name, preprocess=entry.preprocess, class_ids=entry.class_ids())
        raise UserInputError(
            f"weights '{text}' not found: pass an existing weight file or run folder, or a registry name "
            "(torchvision, imagenet, bvlc)."
        )
    refuse_export_input(path)  # .onnx, .pt2, .torchscript.pt, SavedModel: write-only
    if path.is_dir():
        path = run_weights_file(path)
    if regular_file(path, "weights").stat().st_size == 0:  # a device, FIFO or symlink to one is never opened
        raise WeightFormatError(f"weights file '{path}' is empty (0 bytes); re-create or re-download it.")
    return _read_file(path)


def run_weights_file(run_dir: Path) -> Path:
    """The model file of a training run folder (its best model, else its last)."""
    for path in RunFolder(run_dir).weights():
        if path.is_file():
            return path
    raise UserInputError(f"'{run_dir}' is a folder without {' or '.join(RunFolder.WEIGHTS)}; pass a run folder or a file.")


def format_of_name(path: Path) -> str | None:
    """The weight format a file name implies ('torch' for `x.pth`), or None for other names."""
    suffix = _suffix_of(path)
    return next((fmt for fmt, suffixes in FORMAT_SUFFIXES.items() if suffix in suffixes), None)


def format_for_path(path: Path, to: str | None = None) -> str:
    """The output format: `to` when given (it must agree with the file name), else from the name.

    Raises:
        UserInputError: an unknown `to`, a `to` the name contradicts (`x.safetensors --to torch`
            would leave a .pth under a .safetensors name), or a name that implies no format.
    """
    return chosen_format(path, to, list(FORMAT_SUFFIXES), format_of_name(path), "output format")


def chosen_format(path: Path, to: str | None, valid: list[str], implied: str | None, what: str,
                  tolerated: Callable[[Path, str], bool] = lambda path, to: False) -> str:
    """The one rule for an output's format, shared by weight files and exports: `to` when given
    (a known name the file name does not contradict, unless `tolerated`), else the one the name
    implies (`implied`).

    Raises:
        UserInputError: an unknown `to`, a `to` the name contradicts, or a name that implies none.
    """
    if to is not None:
        if to not in valid:
            raise unknown_name_error(what, to, valid)
        if implied is not None and implied != to and not tolerated(path, to):
            # x.safetensors --to torch: a .pth under another name
            raise UserInputError(f"--to {to} contradicts the output name '{path.name}', which names a {implied} file; "
                                 f"give the output a {to} name or drop --to.")
        return to
    if implied is None:
        raise UserInputError(f"cannot tell the output format from '{path.name}'; add --to ({', '.join(valid)}).")
    return implied


def source_files(source: str | os.PathLike[str]) -> list[Path]:
    """The files `load_weights(source)` reads (a run folder's model file, a cached registry
    file), so a writer can refuse to overwrite its own input."""
    if hub.is_hub_ref(str(source)):  # the cached file, looked up without any network access
        return [p for p in [hub.cached_weights(hub.parse_hub_ref(str(source)))] if p is not None]
    path = Path(str(source)).expanduser()
    if path.is_dir():
        return [path, *RunFolder(path).weights()]
    if path.exists() or path.is_symlink():
        return [path]
    if is_registry_name(str(source)):
        return [download.cache_path(get_entry(str(source)))]
    return []


def check_lossless(bundle: WeightBundle, fmt: str) -> None:
    """Refuse a conversion the target format cannot hold without changing predictions.

    Only caffe-npy is limited: it is a bare dict of conv/dense [weights, biases] with no place
    for BatchNorm tensors or any metadata, so a reader can only assume the 'original' variant
    with the bvlc preprocessing and ImageNet (or class_<i>) names.

    Raises:
        UserInputError: naming everything the target would lose.
    """
    if fmt != "caffe-npy":
        return
    meta, lost = bundle.meta, []
    if meta.arch.bn_names:
        lost.append(f"BatchNorm layers ({', '.join(meta.arch.bn_names)})")
    if meta.variant != "original":
        lost.append(f"the variant record ('{meta.variant}'; a .npy is always read back as 'original')")
    if meta.preprocess != BVLC_CAFFE:
        lost.append(f"the preprocessing ({meta.preprocess.describe()}; a .npy is read with bvlc's)")
    if meta.variant == "original" and tuple(meta.categories) != default_categories(meta.num_classes):
        lost.append("the class names")
    if meta.class_ids and tuple(meta.class_ids) != default_class_ids(meta.num_classes):
        lost.append("the class IDs")
    if meta.input_size and meta.input_size != meta.arch.input_size:
        lost.append(f"the input size {meta.input_size}")
    if lost:
        raise UserInputError(f"caffe-npy cannot hold {'; '.join(lost)}; converting would not be lossless. Write "
                             ".safetensors, .pth or .weights.h5 instead, which keep everything.")


def default_categories(num_classes: int) -> tuple[str, ...]:
    """The class names a file without metadata is read with (ImageNet's for 1000 classes)."""
    return imagenet_categories() if num_classes == 1000 else generic_categories(num_classes)


def default_class_ids(num_classes: int) -> tuple[str, ...]:
    """The WordNet IDs a file without metadata is read with (ImageNet's for 1000 classes, else none)."""
    return imagenet_class_ids() if num_classes == 1000 else ()


def save_weights(bundle: WeightBundle, path: str | os.PathLike[str], to: str | None = None) -> Path:
    """Write the bundle in the format `to` (or the one the file name implies), atomically."""
    path = Path(path)
    fmt = format_for_path(path, to)
    check_lossless(bundle, fmt)
    if fmt == "safetensors":
        return write_safetensors(bundle, path)
    if fmt == "caffe-npy":
        write_caffe_npy(bundle.tensors, path)
        return path
    return weight_io.write_weights(fmt, bundle, path)  # each framework's own format, named as the framework
