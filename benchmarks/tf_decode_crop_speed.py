"""How TensorFlow should decode a random-resized-crop box of a JPEG (#29, the Keras training views).

Per photo, torchvision's box (data.augment.resized_crop_box) and the DCT scale PIL's draft would
take (data.train_views.box_min_side), then each way of getting a 224x224 uint8 view, resized with
tf.image.resize (bilinear, antialias), in one tf.function on one thread: images per CPU-second
(other processes' load does not count), each round in turn.
- decode_jpeg(ratio) + slice: the whole photo at the reduced scale, then the box;
- decode_and_crop_jpeg(ratio 1): only the box, at full scale;
- decode_and_crop_jpeg(ratio): only the box, at the reduced scale (train.keras.photo_views);
- decode_jpeg(ratio) alone, for the decode's share.

Run: `python benchmarks/tf_decode_crop_speed.py [--size 500 375] [--count 40] [--idct INTEGER_ACCURATE]`.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from alexnet_lab.data import IMAGENET_AUGMENT
from alexnet_lab.data.augment import resized_crop_box
from alexnet_lab.data.images import draft_reduction
from alexnet_lab.data.train_views import box_min_side, scaled_box

RATIOS, CROP = (1, 2, 4, 8), 224


def photo(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG (smooth structure, a texture and noise, quality 90), as the tests make them."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels += 40 * np.sin(xx / 9.0 + yy / 13.0)[..., None] + rng.normal(0, 8, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def plans(width: int, height: int, count: int) -> list[tuple]:
    """(bytes, full-scale box, reduced box, RATIOS index) per photo."""
    out = []
    for seed in range(count):
        box = resized_crop_box(height, width, IMAGENET_AUGMENT.random_resized_crop, np.random.default_rng(seed))
        reduction = draft_reduction(width, height, box_min_side(height, width, box, CROP))
        shape = (-(-height // reduction), -(-width // reduction))
        small = scaled_box(box, shape[0] / height, shape[1] / width, shape) if reduction > 1 else box
        out.append((photo(width, height, seed), box, small, RATIOS.index(reduction)))
    return out


def ways(idct: str) -> dict:
    def decode(content, ratio):
        return tf.switch_case(ratio, [lambda r=r: tf.io.decode_jpeg(content, channels=3, ratio=r, dct_method=idct)
                                      for r in RATIOS])

    def decode_crop(content, box, ratio):
        return tf.switch_case(ratio, [lambda r=r: tf.io.decode_and_crop_jpeg(content, box, channels=3, ratio=r,
                                                                            dct_method=idct) for r in RATIOS])

    def resized(pixels):
        return tf.cast(tf.round(tf.image.resize(pixels, (CROP, CROP), antialias=True)), tf.uint8)

    def sliced(content, box, ratio):
        return tf.slice(decode(content, ratio), tf.stack([box[0], box[1], 0]), tf.stack([box[2], box[3], 3]))

    spec = [tf.TensorSpec([], tf.string), tf.TensorSpec([4], tf.int32), tf.TensorSpec([], tf.int32)]
    return {name: tf.function(fn, input_signature=spec) for name, fn in {
        "decode_jpeg(ratio) + slice": lambda c, b, r: resized(sliced(c, b, r)),
        "decode_and_crop_jpeg(ratio 1)": lambda c, b, r: resized(decode_crop(c, b, tf.constant(0))),
        "decode_and_crop_jpeg(ratio)": lambda c, b, r: resized(decode_crop(c, b, r)),
        "decode_jpeg(ratio) alone": lambda c, b, r: decode(c, r)}.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(500, 375), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idct", default="INTEGER_ACCURATE", help="INTEGER_ACCURATE (PIL's) or INTEGER_FAST")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    photos = plans(*args.size, args.count)
    speeds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, fn in ways(args.idct).items():
            inputs = [(tf.constant(c), tf.constant(small if "ratio 1" not in name else box, tf.int32),
                       tf.constant(ratio if "ratio 1" not in name else 0, tf.int32)) for c, box, small, ratio in photos]
            fn(*inputs[0])
            start = time.process_time()
            for item in inputs:
                fn(*item)
            speeds.setdefault(name, []).append(len(inputs) / (time.process_time() - start))
    print(json.dumps({"size": args.size, "count": args.count, "idct": args.idct,
                      "reductions": sorted({RATIOS[p[3]] for p in photos}),
                      "img_per_cpu_s": {k: {"median": float(np.median(v)), "range": [min(v), max(v)]}
                                        for k, v in speeds.items()}}, indent=2))


if __name__ == "__main__":
    main()
