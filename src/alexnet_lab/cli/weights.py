"""`alexnet info`, `convert` (weights between formats, or a deployment export) and `verify`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alexnet_lab.cli.flags import WEIGHTS_HELP, export_framework_help


def add_info(sub) -> None:
    p = sub.add_parser("info", help="show what a weight file or registry entry is")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)


def add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert weights between formats, or export a model for serving",
                       description="Weight formats: torch (.pth/.pt), keras (.weights.h5/.keras), safetensors, "
                       "caffe-npy (.npy). Export formats (write-only, see docs/serving.md): onnx (.onnx), torchscript "
                       "(.torchscript.pt), torch-export (.pt2), savedmodel (a folder; needs --to). hf: a Hub-ready folder "
                       "(model.safetensors, config.json, README.md model card; see docs/hub.md). Metadata is kept.")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("output", help="output file (a folder for savedmodel and hf); the format follows from its name unless "
                   "--to is given")
    p.add_argument("--to", help="torch, keras, safetensors, caffe-npy, onnx, torchscript, torch-export, savedmodel or hf")
    p.add_argument("--framework", help=export_framework_help())
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never when it is the input)")
    p.set_defaults(func=cmd_convert)


def add_verify(sub) -> None:
    p = sub.add_parser("verify", help="check that weights are what they claim: structure, integrity, hash, parity",
                       description="Run every check and print PASS/WARN/FAIL/SKIP per check; exit status 1 when "
                       "any check fails, 2 when the input cannot be read.")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("--against", metavar="OTHER", help="compare every tensor with another weight source")
    p.add_argument("--tolerance", type=float, default=0.0, metavar="T",
                   help="largest per-tensor max |difference| --against accepts (default 0: identical)")
    p.add_argument("--images", metavar="DIR", help="images for the parity check (default: generated pictures); a "
                   "labelled class folder (one sub-folder per class) also runs the `preprocessing` check: the bound "
                   "preprocessing against the usual mistakes (RGB/BGR, 0-1/0-255, mean/std, 224/227, resize); "
                   "imagenet-val:PATH runs the `reproduce` check instead (the ImageNet validation set at PATH against "
                   "the published accuracy, as `evaluate --data imagenet-val`)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="with --images LABELLED_FOLDER: the preprocessing check reads the decoded images from a cache "
                   "in DIR, built there first if missing (the same scores as the files; docs/data.md)")
    p.add_argument("--framework-parity", action=argparse.BooleanOptionalAction, default=True,
                   help="compare PyTorch and Keras logits (default on)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)


def cmd_info(args: argparse.Namespace) -> int:
    from alexnet_lab.weights.files import load_weights

    bundle = load_weights(args.weights)
    meta = bundle.meta
    info = {
        "weights": args.weights,
        "variant": meta.variant,
        "description": meta.arch.description,
        "num_classes": meta.num_classes,
        "categories_preview": list(meta.categories[:5]),
        "preprocessing": meta.preprocess.to_dict(),
        "params": bundle.param_count(),
        "expected_params": meta.arch.param_count(meta.num_classes),
        "source": meta.source,
        "sha256": meta.source_sha256,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"weights:       {args.weights}")
    print(f"variant:       {meta.variant} ({meta.arch.description})")
    print(f"classes:       {meta.num_classes} ({', '.join(meta.categories[:5])}{', ...' if meta.num_classes > 5 else ''})")
    print(f"preprocessing: {meta.preprocess.describe()}")
    print(f"parameters:    {info['params']:,} (variant expects {info['expected_params']:,})")
    print(f"source:        {meta.source or '-'}")
    print(f"sha256:        {meta.source_sha256 or '-'}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.inference.export import EXPORT_FORMATS, output_format
    from alexnet_lab.weights.files import load_weights, save_weights, source_files

    output = Path(args.output)
    fmt = output_format(output, args.to)  # check the target before reading a large file
    if fmt in EXPORT_FORMATS:
        return _export(args, output, fmt)
    if args.framework is not None:
        raise UserInputError(f"--framework chooses the model of an export (--to {', '.join(EXPORT_FORMATS)}); "
                             f"--to {fmt} writes weights for both frameworks. Drop --framework.")
    if fmt == "hf":
        return _hub_folder(args, output)
    check_output(output, source_files(args.weights), force=args.force)  # never destroy what was not asked for
    bundle = load_weights(args.weights)
    save_weights(bundle, output, fmt)
    print(f"wrote {output} ({fmt}, variant {bundle.meta.variant}, {bundle.num_classes} classes)")
    return 0


def _hub_folder(args: argparse.Namespace, output: Path) -> int:
    from alexnet_lab.evaluate.hub_export import export_hub_folder
    from alexnet_lab.weights.hub_folder import HUB_FILES

    export_hub_folder(args.weights, output, force=args.force)
    print(f"wrote {output}/ ({', '.join(HUB_FILES)}); upload it with `hf upload OWNER/REPO {output} .`")
    return 0


def _export(args: argparse.Namespace, output: Path, fmt: str) -> int:
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.inference.export import (
        INPUT_LAYOUTS,
        check_output_path,
        export_framework,
        export_model,
        input_shape,
        output_kind,
        weights_digest,
    )
    from alexnet_lab.weights.files import load_weights, source_files

    framework = export_framework(fmt, args.framework)
    check_output_path(output, fmt)
    check_output(output, source_files(args.weights), force=args.force, kind=output_kind(fmt))
    bundle = load_weights(args.weights)
    export_model(bundle, output, fmt, framework, weights_sha256=weights_digest(args.weights, bundle.meta))
    shape = ", ".join(str(d) for d in input_shape(bundle.meta, framework))
    print(f"wrote {output} ({fmt}, {framework} model, {INPUT_LAYOUTS[framework]} float32 input [{shape}], "
          f"variant {bundle.meta.variant}, {bundle.num_classes} classes)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from alexnet_lab.cli.evaluate import check_cache_dir
    from alexnet_lab.verify import VerifyOptions, render_json, render_table, run_verify

    if args.cache_dir and not args.images:
        from alexnet_lab.core.errors import UserInputError

        raise UserInputError("--cache-dir caches the images of --images LABELLED_FOLDER; pass --images or drop --cache-dir.")
    check_cache_dir(args.cache_dir, args.weights, args.images)
    options = VerifyOptions(against=args.against, images=args.images, framework_parity=args.framework_parity,
                            tolerance=args.tolerance, cache_dir=args.cache_dir)
    report = run_verify(args.weights, options)
    print(render_json(report) if args.json else render_table(report))
    return 0 if report.passed else 1
