"""`alexnet explain`'s files: per image a heat-map overlay PNG (and, asked for, the strongest
channel maps of a layer), and explain.jsonl with one line per image."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.explain import check_taps
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.explain.draw import activation_grid, overlay, save_png, upscale
from alexnet_lab.explain.maps import cropped_view, explain_batch, resolve_class
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK, build_for, get_backend

log = logging.getLogger(__name__)

DISPLAY = 128  # small inputs (32x32) are drawn enlarged, pixel for pixel, to at least this size
LINES_NAME = "explain.jsonl"


def _stems(paths: list[str]) -> list[str]:
    """File stems, made unique by a numeric suffix where two images share one."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def _picture_names(stem: str, method: str, activations: str | None) -> tuple[str, ...]:
    """An image's PNGs: the heat-map overlay, and asked for, the channel maps of a layer."""
    return (f"{stem}.{method}.png", *((f"{stem}.{activations}.png",) if activations else ()))


def output_names(paths: Sequence[str], method: str = "gradcam", activations: str | None = None) -> list[str]:
    """Every file write_explanations writes into its folder (the names core.fileio.check_output owns)."""
    return [LINES_NAME, *(name for stem in _stems(list(paths)) for name in _picture_names(stem, method, activations))]


def write_explanations(bundle: WeightBundle, images: Mapping[str, np.ndarray], out: Path, framework: str = DEFAULT_FRAMEWORK,
                       method: str = "gradcam", layer: str | None = None, target: str | int | None = None,
                       activations: str | None = None, device: str = "auto") -> list[dict]:
    """Explain every image and write the pictures and explain.jsonl into `out`; returns the lines.

    Raises:
        UserInputError: an unknown method, layer or class (before any file is written).
    """
    index = resolve_class(target, bundle.meta.categories)
    if activations is not None:
        check_taps(bundle.arch, [activations])
    paths = list(images)
    batch = np.stack([preprocess(images[p], bundle.meta.preprocess) for p in paths])
    model = build_for(bundle, framework, device)
    explained = explain_batch(model, framework, batch, bundle.meta.categories, method, layer, index)
    maps = get_backend(framework).layer_outputs(model, batch, [activations])[activations] if activations else None
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (path, stem, found) in enumerate(zip(paths, _stems(paths), explained)):
        view = cropped_view(images[path], bundle.meta.preprocess)
        side_by_side = np.concatenate([view, overlay(view, found.heat)], axis=1)
        names = _picture_names(stem, method, activations)
        picture = save_png(upscale(side_by_side, DISPLAY // view.shape[0]), out / names[0])
        line = {"image": path, "method": method, "layer": layer or ("conv5" if method == "gradcam" else "input"),
                "framework": framework, **found.to_json_dict(), "png": str(picture)}
        if maps is not None:
            drawn, channels = activation_grid(upscale(view, DISPLAY // view.shape[0]), maps[i])
            line.update(activations=activations, channels=channels,
                        activations_png=str(save_png(drawn, out / names[1])))
        lines.append(line)
    with atomic_path(out / LINES_NAME) as tmp:
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
    log.info("explained %d image(s) into %s", len(lines), out)
    return lines
