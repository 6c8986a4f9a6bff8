"""The uint8 resizes a training view could use, against the numpy reference, one thread (#29).

On decoded 500x375 photos, a 300x280 box resized to 224x224 (the size of an average ImageNet
random-resized crop box), uint8 out; images per CPU-second of this process (other processes' load
does not count), median and range over 3 rounds. Also the JPEG decode itself. OpenCV is left out
unless it is already installed (it is not a dependency).

Run: `python benchmarks/resize_speed.py [--folder FOLDER_OF_JPEGS]` (default: 64 generated photo-like
JPEGs: smooth structure, a texture and noise, quality 90). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

TOP, LEFT, HEIGHT, WIDTH = 30, 40, 280, 300


def make_photos(root: Path, count: int = 64) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500]
    for i in range(count):
        coarse = rng.integers(0, 256, size=(6 + i % 4, 8 + i % 4, 3), dtype=np.uint8)
        pixels = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC)).astype(np.float32)
        pixels += 40 * np.sin(xx / (7 + 3 * (i % 4)) + yy / 11.0)[..., None] + rng.normal(0, 8, pixels.shape)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / f"{i:03d}.jpg", quality=90)
    return root


def alternatives(blobs: list[bytes]) -> dict:
    import torchvision.transforms.v2.functional as TF

    from alexnet_lab.core.preprocessing import resize_bilinear, to_uint8

    images = []
    for blob in blobs:
        image = Image.open(io.BytesIO(blob))
        image.load()
        images.append(image)
    arrays = [np.array(image) for image in images]
    tensors = [torch.from_numpy(a) for a in arrays]
    box = (LEFT, TOP, LEFT + WIDTH, TOP + HEIGHT)
    found = {
        "decode_pil_libjpeg_turbo": lambda i: Image.open(io.BytesIO(blobs[i])).load(),
        "pil_resize_box": lambda i: images[i].resize((224, 224), Image.BILINEAR, box=box),
        "torchvision_v2_resized_crop_uint8": lambda i: TF.resized_crop(
            tensors[i].permute(2, 0, 1), TOP, LEFT, HEIGHT, WIDTH, [224, 224], antialias=True),
        "torch_interpolate_uint8_contiguous_crop": lambda i: F.interpolate(
            torch.from_numpy(np.ascontiguousarray(arrays[i][TOP:TOP + HEIGHT, LEFT:LEFT + WIDTH])).permute(2, 0, 1)[None],
            size=(224, 224), mode="bilinear", antialias=True, align_corners=False),
        "numpy_float32_reference": lambda i: to_uint8(resize_bilinear(arrays[i][TOP:TOP + HEIGHT, LEFT:LEFT + WIDTH],
                                                                      224, 224)),
    }
    try:
        import cv2  # only if already installed

        found["opencv_inter_area"] = lambda i: cv2.resize(arrays[i][TOP:TOP + HEIGHT, LEFT:LEFT + WIDTH], (224, 224),
                                                          interpolation=cv2.INTER_AREA)
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="JPEGs to read (default: 64 generated photos)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else make_photos(Path(tmp))
        blobs = [p.read_bytes() for p in sorted(folder.rglob("*.jpg"))[:64]]
    rounds: dict = {}
    for _ in range(3):
        for name, run in alternatives(blobs).items():
            run(0)
            start = time.process_time()
            for i in range(len(blobs)):
                run(i)
            rounds.setdefault(name, []).append(len(blobs) / (time.process_time() - start))
    print(json.dumps({name: {"img_per_cpu_s": float(np.median(v)), "range": [min(v), max(v)]}
                      for name, v in rounds.items()}, indent=2))


if __name__ == "__main__":
    main()
