"""`alexnet features`, `alexnet explain` and `alexnet filters`: seeing inside the model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alexnet_lab.cli.flags import DEVICE_HELP, FRAMEWORK_HELP, WEIGHTS_HELP
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK


def _common(p, what: str) -> None:
    p.add_argument("--weights", required=True, help=WEIGHTS_HELP)
    p.add_argument("--framework", default=DEFAULT_FRAMEWORK, help=f"{FRAMEWORK_HELP}: which model {what}")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_features(sub) -> None:
    p = sub.add_parser("features", help="outputs of named layers (conv1 ... fc8) for images, as .npy/.npz/.safetensors")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders searched recursively")
    _common(p, "computes them")
    p.add_argument("--layer", action="append", required=True, metavar="NAME",
                   help="layer to read (repeatable): conv1-conv5 and fc6/fc7 after their ReLU, lrn1/2, pool1/2/5, fc8")
    p.add_argument("--pool", default="none", choices=("none", "avg", "max"),
                   help="global pooling of conv maps to one value per channel (default none: N x H x W x C)")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy (one layer), .npz or .safetensors (with the "
                   "image paths, in order)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists (never an input)")
    p.set_defaults(func=cmd_features)


def cmd_features(args: argparse.Namespace) -> int:
    from alexnet_lab.cli.predict import EXIT_USER_ERROR
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.explain.features import check_output_suffix, expand_images, extract_features, write_features
    from alexnet_lab.weights.files import load_weights, source_files

    suffix = check_output_suffix(args.out, len(set(args.layer)))
    check_output(args.out, [*source_files(args.weights), *args.images], force=args.force)
    paths = expand_images(args.images)
    bundle = load_weights(args.weights)
    bad: list[Path] = []

    def report(path: Path, exc: Exception) -> None:  # one line each; the other images go on
        bad.append(path)
        print(f"alexnet: error: {exc}", file=sys.stderr)

    # a .npy holds rows only: without the list of paths a left-out image would shift the rows, so
    # there the first bad image stops the command; .npz and .safetensors record the paths they hold
    with _bar(len(paths), any(Path(p).is_dir() for p in args.images)) as bar:
        features = extract_features(bundle, paths, args.layer, args.framework, args.pool, args.device,
                                    progress=bar.update, on_error=None if suffix == ".npy" else report)
    kept = [p for p in paths if Path(p) not in bad]
    write_features(features, kept, args.out, {"weights": str(args.weights), "framework": args.framework,
                                               "pool": args.pool})
    shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in features.items())
    print(f"{args.out}: {len(kept)} images; {shapes}" + (f" ({len(bad)} left out, named above)" if bad else ""))
    return EXIT_USER_ERROR if bad else 0


def _bar(total: int, enabled: bool):
    """A tqdm progress bar on stderr for folders when stderr is a terminal, else a no-op."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", disable=not (enabled and sys.stderr.isatty()), leave=False, file=sys.stderr)


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM or saliency heat maps over the network's input, one PNG per image")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _common(p, "is explained")
    p.add_argument("--method", default="gradcam", choices=("gradcam", "saliency"), help="default gradcam")
    p.add_argument("--layer", default=None, help="Grad-CAM's layer (default conv5)")
    p.add_argument("--class", dest="target", default=None, metavar="LABEL_OR_INDEX",
                   help="the class to explain (default: each image's top class)")
    p.add_argument("--activations", metavar="LAYER", help="also draw the strongest channel maps of LAYER per image")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and explain.jsonl")
    p.add_argument("--force", action="store_true", help="replace an earlier explain's files of the same names in DIR "
                   "(other files there are left alone)")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from alexnet_lab.cli.predict import EXIT_USER_ERROR
    from alexnet_lab.core.errors import AlexnetLabError
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.data.images import read_image_rgb
    from alexnet_lab.explain.report import output_names, write_explanations
    from alexnet_lab.weights.files import load_weights, source_files

    check_output(args.out, [*source_files(args.weights), *args.images], force=args.force, kind="folder",
                 owned=output_names(args.images, args.method, args.activations))
    images, errors = {}, 0
    for path in args.images:  # an unreadable or refused image is one line; the others are still explained
        try:
            images[path] = read_image_rgb(path)
        except AlexnetLabError as exc:
            errors += 1
            print(f"alexnet: error: {exc}", file=sys.stderr)
    if not images:
        return EXIT_USER_ERROR
    bundle = load_weights(args.weights)
    lines = write_explanations(bundle, images, Path(args.out), args.framework, args.method, args.layer,
                               args.target, args.activations, args.device)
    for line in lines:
        print(json.dumps(line))
    return EXIT_USER_ERROR if errors else 0


def add_filters(sub) -> None:
    p = sub.add_parser("filters", help="draw a conv layer's learned filters (conv1 as colour patches) as a PNG")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("--layer", default="conv1", help="conv layer (default conv1)")
    p.add_argument("--zoom", type=int, default=4, help="pixels per weight for an 11x11 kernel (default 4)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--force", action="store_true", help="replace FILE.png if it exists (never an input)")
    p.set_defaults(func=cmd_filters)


def cmd_filters(args: argparse.Namespace) -> int:
    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.explain.draw import filter_grid, save_png
    from alexnet_lab.weights.files import load_weights, source_files

    if not args.out.lower().endswith(".png"):
        raise UserInputError(f"--out must name a .png file; received '{args.out}'.")
    if args.zoom < 1:
        raise UserInputError(f"--zoom must be at least 1; received {args.zoom}.")
    check_output(args.out, source_files(args.weights), force=args.force)
    bundle = load_weights(args.weights)
    picture = filter_grid(bundle.tensors, bundle.arch, args.layer, args.zoom)
    save_png(picture, args.out)
    print(f"{args.out}: {bundle.tensors[args.layer + '.weight'].shape[0]} {args.layer} filters "
          f"({bundle.meta.variant}), {picture.shape[1]}x{picture.shape[0]} px")
    return 0
