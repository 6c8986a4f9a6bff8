"""`alexnet predict`: classify image files; an unreadable image is reported and the rest predicted."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from alexnet_lab.cli.flags import DEVICE_HELP, FRAMEWORK_HELP, WEIGHTS_HELP
from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.precision import INFERENCE_PRECISIONS
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK

EXIT_USER_ERROR = 2  # the CLI's exit status for bad input (cli.EXIT_USER_ERROR)


def add_precision_flags(p, calibration_default: str) -> None:
    p.add_argument("--precision", "--inference-precision", dest="precision", default="fp32",
                   choices=INFERENCE_PRECISIONS,
                   help="inference precision, the weights themselves held in it (training's is `alexnet train "
                   "--precision`): fp32 (default, exact); bf16: weights held in bfloat16, native and faster on CPUs with "
                   "AVX512-BF16 or AMX and on recent GPUs, emulated and slower elsewhere; auto: bf16 where native, "
                   "else fp32; int8: on the CPU, post-training quantized (PyTorch's int8 kernels; TensorFlow Lite for "
                   "Keras, about a minute to convert owt), top-1 within a fraction of a point (docs/performance.md)")
    p.add_argument("--calibration", metavar="DATA", help="int8: images that set the activation ranges (class folder, "
                   f"list file or split.json); {calibration_default}")
    p.add_argument("--calibration-images", type=int, default=256, metavar="N",
                   help="int8: how many calibration images to draw (default 256)")



def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify images with the weights' own preprocessing and labels")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--framework", default=DEFAULT_FRAMEWORK, help=FRAMEWORK_HELP)
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to list (default 5)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_precision_flags(p, "int8 needs --calibration")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_predict)


def _read_images(paths: Sequence[str]) -> tuple[dict[str, object], dict[str, str]]:
    """Decode every image; an unreadable one is recorded (path -> message) and the rest go on."""
    from alexnet_lab.data.images import read_image_rgb

    images, errors = {}, {}
    for path in paths:
        try:
            images[path] = read_image_rgb(path)
        except AlexnetLabError as exc:
            errors[path] = str(exc)
    return images, errors


def cmd_predict(args: argparse.Namespace) -> int:
    from alexnet_lab.core.precision import NEEDS_CALIBRATION
    from alexnet_lab.frameworks import FRAMEWORKS
    from alexnet_lab.inference.predict import check_precision, predict_images
    from alexnet_lab.weights.files import load_weights

    if args.framework not in FRAMEWORKS:  # a bad name fails before any heavy loading
        from alexnet_lab.core.errors import unknown_name_error

        raise unknown_name_error("framework", args.framework, FRAMEWORKS)
    check_precision(args.precision, args.framework, args.device)
    if args.precision == "int8" and args.calibration is None:
        from alexnet_lab.core.errors import UserInputError

        raise UserInputError(NEEDS_CALIBRATION)
    images, errors = _read_images(args.images)
    for message in errors.values():  # one line per unreadable image; the others are still predicted
        print(f"alexnet: error: {message}", file=sys.stderr)
    results = {}
    if images:
        bundle = load_weights(args.weights)
        calibration = None
        if args.precision == "int8":
            from alexnet_lab.evaluate.dataset_eval import calibration_batch, read_calibration

            calibration = calibration_batch(bundle, read_calibration(args.calibration), args.calibration_images)
        predictions = predict_images(bundle, list(images.values()), framework=args.framework, k=args.top,
                                     device=args.device, precision=args.precision, calibration=calibration)
        results = dict(zip(images, predictions))
    _print_predictions(args, results, errors)
    return EXIT_USER_ERROR if errors else 0


def _print_predictions(args: argparse.Namespace, results: dict, errors: dict[str, str]) -> None:
    if args.json:  # one entry per IMAGE argument, in order; an unreadable one has "error" instead
        doc = [{"image": path, "error": errors[path]} if path in errors
               else {"image": path, "predictions": [p.to_dict() for p in results[path]]} for path in args.images]
        print(json.dumps(doc))
        return
    for path in args.images:
        if path in errors:
            continue
        print(path)
        for p in results[path]:
            where = f"{p.index}, {p.wnid}" if p.wnid else p.index
            print(f"  {p.rank}. {p.label} ({where})  {100 * p.probability:.2f}%")
