"""`alexnet features`: the outputs of named layers for image files, with the weights' own
preprocessing, in either framework, written as .npy (one layer), .npz or .safetensors.

Images are decoded and run in chunks, so a large folder needs memory for one chunk of inputs
plus the features kept. The image paths go into the file with the features, in order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.explain import check_taps, pool_features
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK, build_for, get_backend

log = logging.getLogger(__name__)

FEATURE_SUFFIXES = (".npy", ".npz", ".safetensors")
PATHS_KEY = "paths"  # the image paths in a .npz (no layer has this name)


def expand_images(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Image files named directly, and those under named folders (recursively, in name order).

    Raises:
        UserInputError: a path that does not exist, or no image at all.
    """
    from alexnet_lab.data.images import is_image_path
    from alexnet_lab.data.walk import list_files

    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():  # the one walker: links stay inside the folder, no image twice
            found += sorted((Path(p) for p in list_files(path, is_image_path)), key=lambda p: p.parts)
        elif path.is_file():
            found.append(path)
        else:
            raise UserInputError(f"'{source}' is neither an image file nor a folder; pass existing paths.")
    if not found:
        raise UserInputError(f"no image files (.jpg, .png, ...) in {', '.join(map(str, sources))}; pass images or a "
                             "folder holding some.")
    return found


def check_output_suffix(out: str | os.PathLike[str], num_layers: int) -> str:
    """The output format from --out's ending; .npy holds one layer only.

    Raises:
        UserInputError: another ending, or .npy with several layers.
    """
    suffix = Path(out).suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise UserInputError(f"--out must end in {', '.join(FEATURE_SUFFIXES)}; received '{out}'.")
    if suffix == ".npy" and num_layers > 1:
        raise UserInputError(f"a .npy file holds one layer; received {num_layers} --layer values. Use .npz or "
                             ".safetensors for several.")
    return suffix


def extract_features(bundle: WeightBundle, paths: Sequence[Path], layers: Sequence[str], framework: str = DEFAULT_FRAMEWORK,
                     pool: str = "none", device: str = "auto", chunk: int = 32,
                     progress: Callable[[int], None] | None = None,
                     on_error: Callable[[Path, Exception], None] | None = None) -> dict[str, np.ndarray]:
    """{layer: float32 array with one row per image} for the image files, all layers in one pass.

    Args:
        pool: 'none' keeps conv maps N x H x W x C; 'avg' / 'max' pool them to N x C.
        progress: called with the number of images done after each chunk.
        on_error: called with each image that cannot be read or is refused by the image guard,
            which is then left out (its row is absent: the caller records which paths remain);
            without it the first such image raises.
    """
    from alexnet_lab.core.errors import AlexnetLabError, UserInputError
    from alexnet_lab.data.images import read_image_rgb

    layers = check_taps(bundle.arch, layers)
    pool_features(np.zeros((1, 1)), pool)  # an unknown pool fails before any work
    backend = get_backend(framework)
    model = build_for(bundle, framework, device)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for start in range(0, len(paths), chunk):
        inputs = []
        for path in paths[start : start + chunk]:
            try:
                inputs.append(preprocess(read_image_rgb(path), bundle.meta.preprocess))
            except AlexnetLabError as exc:
                if on_error is None:
                    raise
                on_error(Path(path), exc)
        if inputs:
            for name, array in backend.layer_outputs(model, np.stack(inputs), layers, batch_size=chunk).items():
                parts[name].append(pool_features(array, pool))
        if progress is not None:
            progress(len(paths[start : start + chunk]))
    if not parts[layers[0]]:
        raise UserInputError("none of the images could be read; check the files (each was reported above).")
    return {name: np.concatenate(found) for name, found in parts.items()}


def write_features(features: dict[str, np.ndarray], paths: Sequence[Path], out: str | os.PathLike[str],
                   meta: dict[str, str] | None = None) -> Path:
    """Write the features atomically as .npy (one layer), .npz (plus `paths`) or .safetensors
    (the paths and `meta` in the header metadata)."""
    suffix = check_output_suffix(out, len(features))
    names = [str(p) for p in paths]
    with atomic_path(out) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, next(iter(features.values())))
        elif suffix == ".npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, **features, **{PATHS_KEY: np.asarray(names)})
        else:
            from safetensors.numpy import save_file

            arrays = {name: np.ascontiguousarray(array) for name, array in features.items()}
            save_file(arrays, str(tmp), metadata={PATHS_KEY: json.dumps(names), **(meta or {})})
    log.info("wrote %s (%s)", out, ", ".join(f"{k} {v.shape}" for k, v in features.items()))
    return Path(out)
