"""`alexnet demo`: the main job on embedded data, no download needed.

Writes a torchvision-format AlexNet file and sample images into a folder, converts the weights to
every format, and shows that PyTorch and Keras predict the same thing from each of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def sample_images(folder: Path, count: int = 4, seed: int = 0) -> list[Path]:
    """Write `count` generated PNG pictures (smooth colour fields) and return their paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        coarse = rng.uniform(0, 255, size=(6, 8, 3)).astype(np.float32)
        image = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((400, 300), Image.BILINEAR))
        path = folder / f"sample{i}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def parity_tour(out_dir: Path, seed: int = 0) -> dict:
    """Run the weight-parity tour; returns the figures it printed."""
    import torch
    import torchvision

    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.inference import logits_for_images, softmax
    from alexnet_lab.weights import load_weights, save_weights

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    state = torchvision.models.alexnet().state_dict()
    source = out_dir / "alexnet-random.pth"
    torch.save(state, source)
    images = [read_image_rgb(p) for p in sample_images(out_dir)]
    bundle = load_weights(source)
    reference = softmax(logits_for_images(bundle, images, "torch"))
    figures = {}
    for name in ("alexnet.safetensors", "alexnet.weights.h5", "alexnet.keras", "alexnet-copy.pth"):
        converted = load_weights(save_weights(bundle, out_dir / name))
        for framework in ("torch", "keras"):
            probs = softmax(logits_for_images(converted, images, framework))
            figures[f"{name} [{framework}]"] = float(np.abs(probs - reference).max())
    return figures
