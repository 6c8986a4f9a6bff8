"""JPEG decoding options against plain PIL, one thread, on generated JPEGs (500x375 by default).

Per option, images/s over the same files:
  pil_full            data.images.read_image_rgb: PIL decodes every pixel (plain PIL, as before streaming)
  pil_draft_256       PIL's draft: DCT-domain downscaling while decoding, shorter side kept >= 256
  store_pil / store_draft   the whole stored view owt trains from (decode, antialiased resize to 256,
                      centre crop): data.stream.stored_pixels with --decoder pil / draft
  torchvision_decode_jpeg   torchvision.io.decode_jpeg (libjpeg-turbo), --framework torch
  tf_decode_jpeg / tf_decode_jpeg_ratio2   tf.io.decode_jpeg at full size / ratio=2 (DCT scaling),
                      --framework keras (TensorFlow and torchvision never share a process here)

Prints one JSON object.
Run: `nice -n 10 python benchmarks/decode_speed.py --framework torch|keras [--count 200] [--size 500 375]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
from jpeg_data import make_jpeg_folder  # noqa: E402


def rate(paths: list[str], decode: Callable[[str], object]) -> float:
    decode(paths[0])  # warm-up
    started = time.perf_counter()
    for path in paths:
        decode(path)
    return round(len(paths) / (time.perf_counter() - started), 1)


def pil_options() -> dict[str, Callable[[str], object]]:
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.data.stream import stored_pixels

    return {"pil_full": read_image_rgb, "pil_draft_256": lambda p: read_image_rgb(p, min_side=256),
            "store_pil": lambda p: stored_pixels(p, TORCHVISION_IMAGENET, "pil"),
            "store_draft": lambda p: stored_pixels(p, TORCHVISION_IMAGENET, "draft")}


def framework_options(framework: str) -> dict[str, Callable[[str], object]]:
    if framework == "torch":
        import torch
        from torchvision.io import decode_jpeg, read_file

        torch.set_num_threads(1)
        return {"torchvision_decode_jpeg": lambda p: decode_jpeg(read_file(p))}
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return {"tf_decode_jpeg": lambda p: tf.io.decode_jpeg(tf.io.read_file(p), channels=3).numpy(),
            "tf_decode_jpeg_ratio2": lambda p: tf.io.decode_jpeg(tf.io.read_file(p), channels=3, ratio=2).numpy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["torch", "keras"], default="torch")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, nargs=2, default=[500, 375], help="width height of the JPEGs")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(tempfile.mkdtemp(prefix="alexnet-decode-", dir="/tmp"))
    try:
        folder = make_jpeg_folder(root, args.count, size=tuple(args.size))
        paths = sorted(str(p) for p in folder.glob("*/*.jpg"))
        options = {**framework_options(args.framework), **pil_options()}
        result = {name: rate(paths, decode) for name, decode in options.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"images": len(paths), "size": "x".join(map(str, args.size)), "threads": 1, "images_per_second": result,
                      "draft_speedup_store": round(result["store_draft"] / result["store_pil"], 2)}, indent=2))


if __name__ == "__main__":
    main()
