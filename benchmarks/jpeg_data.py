"""Generated full-size JPEG class folders for the streaming benchmarks (never in the repo).

`make_jpeg_folder(root, count)` writes `count` distinct 500x375 photos-like JPEGs (smooth random
colour fields with a few shapes, quality 90, ~20-40 KB each; ImageNet's average image is about
400x350) into 10 class folders. Used by streaming_memory.py, decode_speed.py and pipeline_speed.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = (500, 375)


def make_jpeg(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> Image.Image:
    """One smooth random picture: a 6x8 colour field upsampled, with two ellipses drawn on it."""
    field = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(2):
        x, y = int(rng.integers(0, size[0] - 80)), int(rng.integers(0, size[1] - 80))
        draw.ellipse((x, y, x + int(rng.integers(20, 80)), y + int(rng.integers(20, 80))),
                     fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def make_jpeg_folder(root: Path, count: int, classes: int = 10, seed: int = 0, size: tuple[int, int] = SIZE) -> Path:
    """Write `count` JPEGs into root/class_k/; returns root. Existing complete folders are kept."""
    marker = root / f".complete-{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        make_jpeg(rng, size).save(folder / f"{i:06d}.jpg", quality=90)
    marker.touch()
    return root
