"""Read and write Keras weight files: `.weights.h5` and whole-model `.keras` archives.

The project's metadata is stored beside the weights: an `alexnet_lab` attribute on the HDF5
root, and an `alexnet_lab.json` member in the `.keras` zip; Keras ignores both. `.keras` files
are loaded with safe_mode=True, which refuses serialized Python code (Lambda layers).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import keras

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.frameworks.keras.convert import from_canonical, model_variant, to_canonical
from alexnet_lab.frameworks.keras.network import logits_model

META_ATTR = "alexnet_lab"
META_MEMBER = "alexnet_lab.json"


def _model_for(meta: ModelMeta) -> keras.Model:
    size = meta.input_size or meta.arch.input_size
    return logits_model(meta.variant, meta.num_classes, input_size=size)


def _h5_layer_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    with h5py.File(path, "r") as fh:
        for name in ("conv1", "fc8"):
            kernel = fh.get(f"layers/{name}/vars/0")
            if kernel is not None:
                shapes[name] = tuple(kernel.shape)
    return shapes


def _infer_meta(path, default_meta) -> ModelMeta:
    shapes = _h5_layer_shapes(path)
    if "conv1" not in shapes or "fc8" not in shapes:
        raise WeightFormatError(f"{path} has no 'conv1' and 'fc8' layers; it is not an AlexNet weights file.")
    variant = next((v for v in ("owt", "original") if shapes["conv1"][-1] == {"owt": 64, "original": 96}[v]), None)
    if variant is None:
        raise WeightFormatError(f"{path}: conv1 kernel {shapes['conv1']} matches no AlexNet variant.")
    return default_meta(variant, shapes["fc8"][-1])


def read_weights_h5(path: str | os.PathLike[str], default_meta=None) -> WeightBundle:
    """Read a `.weights.h5` written by Keras for an AlexNet with the stable layer names."""
    try:
        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get(META_ATTR)
    except OSError as exc:
        raise WeightFormatError(f"{path} is not a readable HDF5 file ({exc}); re-create it.") from None
    meta = ModelMeta.from_metadata(json.loads(raw), where=str(path)) if raw else _infer_meta(path, default_meta)
    model = _model_for(meta)
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as exc:
        raise WeightFormatError(f"{path} does not fit a '{meta.variant}' AlexNet with {meta.num_classes} classes "
                                f"({exc}).") from None
    return WeightBundle(to_canonical(model), meta)


def write_weights_h5(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    def save(model, keras_tmp: Path) -> None:
        model.save_weights(str(keras_tmp))
        with h5py.File(keras_tmp, "a") as fh:
            fh.attrs[META_ATTR] = json.dumps(bundle.metadata())

    return _write_atomically(bundle, path, ".weights.h5", save)


def read_keras_archive(path: str | os.PathLike[str], default_meta=None) -> WeightBundle:
    """Read a `.keras` model archive (safe_mode=True) holding an AlexNet."""
    import alexnet_lab.frameworks.keras.layers  # noqa: F401 - registers the layers older archives hold

    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(META_MEMBER) if META_MEMBER in archive.namelist() else None
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except (zipfile.BadZipFile, ValueError, TypeError, OSError) as exc:
        raise WeightFormatError(f"{path} is not a loadable .keras archive ({str(exc).splitlines()[0]}).") from None
    if raw:
        meta = ModelMeta.from_metadata(json.loads(raw), where=str(path))
    else:
        variant = model_variant(model)
        meta = default_meta(variant, model.get_layer("fc8").units)
    model.alexnet_variant = meta.variant
    return WeightBundle(to_canonical(model), meta)


def write_keras_archive(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    def save(model, keras_tmp: Path) -> None:
        model.save(str(keras_tmp))
        with zipfile.ZipFile(keras_tmp, "a") as archive:
            archive.writestr(META_MEMBER, json.dumps(bundle.metadata()))

    return _write_atomically(bundle, path, ".keras", save)


def _write_atomically(bundle: WeightBundle, path: str | os.PathLike[str], suffix: str,
                      save: Callable[[object, Path], None]) -> Path:
    """Build the model, `save` it (with its metadata) under a temporary name ending in `suffix`
    (Keras insists on its suffixes) and rename it over `path` only once complete."""
    model = from_canonical(_model_for(bundle.meta), bundle.tensors)
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_name(tmp.name + suffix)
        try:
            save(model, keras_tmp)
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)
    return Path(path)


def read_weights(path: str | os.PathLike[str], default_meta=None) -> WeightBundle:
    """A .weights.h5 file or a .keras archive (the Backend protocol's reader)."""
    reader = read_keras_archive if str(path).lower().endswith(".keras") else read_weights_h5
    return reader(path, default_meta)


def write_weights(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    """A .keras archive when the name ends in .keras, else a .weights.h5 file (the Backend protocol's writer)."""
    writer = write_keras_archive if str(path).lower().endswith(".keras") else write_weights_h5
    return writer(bundle, path)
