"""Size and read speed of the decoded cache's two formats (raw pixels, JPEGs re-encoded at the store size).

Writes `--count` generated 500x375 JPEGs (benchmarks/jpeg_data.py: smooth colour fields; `--texture`
adds a stripe texture and noise, closer to a photo's detail), builds the raw and the jpeg cache of
them at torchvision's preprocessing (shorter side 256, aspect kept) and prints one JSON object: the
folder's bytes, each cache's data bytes and the ratios, the build time, and the rate of ImageNet
training views (random-resized crop + flip, 224) and evaluation squares read back, one thread.

    PYTHONPATH=src python benchmarks/cache_size.py --count 500 [--texture] [--quality 90]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jpeg_data import make_jpeg  # noqa: E402

from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET  # noqa: E402
from alexnet_lab.data import IMAGENET_AUGMENT, read_class_folder  # noqa: E402
from alexnet_lab.data.cache import cached_store  # noqa: E402
from alexnet_lab.data.ragged import StoreFormat  # noqa: E402


def write_folder(root: Path, count: int, texture: bool, size=(500, 375)) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    stripes = 30 * np.sin(xx / 5.0 + yy / 7.0)[..., None]
    for i in range(count):
        folder = root / f"class_{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        image = make_jpeg(rng, size)
        if texture:
            pixels = np.asarray(image, np.float32) + stripes + rng.normal(0, 8, (size[1], size[0], 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:06d}.jpg", quality=90)
    return root


def rate(count: int, read) -> float:
    start = time.perf_counter()
    for i in range(count):
        read(i)
    return round(count / (time.perf_counter() - start), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--texture", action="store_true", help="stripes and noise on the smooth pictures")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="alexnet-cache-size-", dir="/tmp"))
    try:
        index = read_class_folder(write_folder(root / "data", args.count, args.texture))
        result = {"images": len(index), "texture": args.texture, "quality": args.quality,
                  "folder_bytes": sum(p.stat().st_size for p in (root / "data").rglob("*.jpg"))}
        for fmt in (StoreFormat("raw"), StoreFormat("jpeg", args.quality)):
            start = time.perf_counter()
            images = cached_store(index, TORCHVISION_IMAGENET, "draft", root / "cache", fmt=fmt)[0]
            built = time.perf_counter() - start
            rng = np.random.default_rng(0)
            result[fmt.kind] = {
                "data_bytes": images.path.stat().st_size, "build_seconds": round(built, 1),
                "train_views_per_second": rate(len(images), partial(images.train_view, augment=IMAGENET_AUGMENT,
                                                                    crop=224, rng=rng)),
                "eval_squares_per_second": rate(len(images), images.read)}
        result["jpeg_over_raw"] = round(result["jpeg"]["data_bytes"] / result["raw"]["data_bytes"], 4)
        result["jpeg_over_folder"] = round(result["jpeg"]["data_bytes"] / result["folder_bytes"], 3)
        result["raw_over_folder"] = round(result["raw"]["data_bytes"] / result["folder_bytes"], 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
