"""The `alexnet` command line: argument parsing and printing only; the work is in the library.

Every user error becomes one line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from alexnet_lab.core.version import __version__
from alexnet_lab.core.errors import AlexnetLabError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AlexnetLabError(f"{message} (see '{self.prog} --help')")


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="show what a weight file or registry entry is")
    p.add_argument("weights", help="registry name (torchvision, imagenet, bvlc) or weight file / run folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)


def _add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert weights between formats, or export a model for serving",
                       description="Weight formats: torch (.pth/.pt), keras (.weights.h5/.keras), safetensors, "
                       "caffe-npy (.npy). Export formats (write-only, see docs/serving.md): onnx (.onnx), torchscript "
                       "(.torchscript.pt), torch-export (.pt2), savedmodel (a folder; needs --to). Metadata is kept.")
    p.add_argument("weights", help="registry name or weight file / run folder")
    p.add_argument("output", help="output file (a folder for savedmodel); the format follows from its name unless "
                   "--to is given")
    p.add_argument("--to", help="torch, keras, safetensors, caffe-npy, onnx, torchscript, torch-export or savedmodel")
    p.add_argument("--framework", help="export formats only: which model is exported, torch (NCHW input) or keras "
                   "(NHWC input); default torch, keras for savedmodel")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never when it is the input)")
    p.set_defaults(func=cmd_convert)


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="check that weights are what they claim: structure, integrity, hash, parity",
                       description="Run every check and print PASS/WARN/FAIL/SKIP per check; exit status 1 when "
                       "any check fails, 2 when the input cannot be read.")
    p.add_argument("weights", help="registry name or weight file / run folder")
    p.add_argument("--against", metavar="OTHER", help="compare every tensor with another weight source")
    p.add_argument("--tolerance", type=float, default=0.0, metavar="T",
                   help="largest per-tensor max |difference| --against accepts (default 0: identical)")
    p.add_argument("--images", metavar="DIR", help="images for the parity check (default: generated pictures)")
    p.add_argument("--framework-parity", action=argparse.BooleanOptionalAction, default=True,
                   help="compare PyTorch and Keras logits (default on)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)


def _add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="training/inference throughput, latency and memory vs plain references")
    p.add_argument("--frameworks", nargs="+", default=["torch", "keras"], help="torch and/or keras (default both)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=224, help="input size (default 224)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement and round (default 10)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of ours then the reference, each in fresh processes; "
                   "medians are reported (default 3)")
    p.add_argument("--no-jpeg", action="store_true", help="skip the JPEG input-pipeline measurement")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from alexnet_lab.bench.runner import run_benchmark
    from alexnet_lab.bench.settings import BenchSettings
    from alexnet_lab.frameworks import FRAMEWORKS

    for framework in args.frameworks:
        if framework not in FRAMEWORKS:
            from alexnet_lab.core.errors import unknown_name_error

            raise unknown_name_error("framework", framework, FRAMEWORKS)
    if "torch" in args.frameworks:  # a missing device fails here, before any worker starts
        from alexnet_lab.frameworks.torch.device import resolve_device

        resolve_device(args.device)
    for flag, value in (("--repeats", args.repeats), ("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value < 1:
            from alexnet_lab.core.errors import UserInputError

            raise UserInputError(f"{flag} must be at least 1; received {value}.")
    from alexnet_lab.core.spec import get_arch

    settings = BenchSettings(size=args.size, batch=args.batch_size, train_steps=args.steps, infer_steps=args.steps,
                             repeats=args.repeats, device=args.device)
    get_arch(settings.variant).feature_map_size(settings.size)  # a too-small --size fails here, in one line
    doc = run_benchmark(settings, tuple(args.frameworks), jpeg=not args.no_jpeg)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for framework in args.frameworks:
        r, spread = doc[framework], doc[framework]["spread"]
        ours, ref = r["ours"], r["reference"]
        print(f"{framework}: train {r['train_img_s']:.1f} img/s in {ours['train_precision']} (reference "
              f"{r['reference_train_img_s']:.1f} in fp32, x{r['train_speedup']:.2f}, rounds "
              f"x{spread['train_speedup'][0]:.2f}-{spread['train_speedup'][1]:.2f}) | inference "
              f"{r['infer_img_s']:.1f} img/s in {ours['infer_precision']} (reference {r['reference_infer_img_s']:.1f}, "
              f"x{r['infer_speedup']:.2f}) | batch-1 {r['latency_ms']:.1f} ms (reference "
              f"{r['reference_latency_ms']:.1f}) | peak {r['peak_rss_mb']:.0f} MB (reference "
              f"{r['reference_peak_rss_mb']:.0f}) | layout {ours['layout']} vs {ref['layout']}")
        for kind in ("bf16", "int8"):
            if f"{kind}_infer_img_s" in r:
                print(f"{framework} {kind} inference (--precision {kind}): {r[f'{kind}_infer_img_s']:.1f} img/s "
                      f"(x{r[f'{kind}_infer_speedup']:.2f} the reference) | batch-1 {r[f'{kind}_latency_ms']:.1f} ms")
    if "input_pipeline" in doc:
        print(f"JPEG input pipeline: {doc['input_pipeline']['jpeg_pipeline_img_s']:.0f} img/s")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on embedded data (no download)")
    p.add_argument("--out", default="runs/demo", help="folder for the demo's files (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --out (refused otherwise)")
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alexnet", description="AlexNet in PyTorch and Keras 3, with weights you can trust.")
    parser.add_argument("--version", action="version", version=f"alexnet-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from alexnet_lab.cli.predict import add_predict
    from alexnet_lab.cli.train import add_evaluate, add_report, add_train

    for add in (_add_info, add_predict, _add_convert, _add_verify, add_train, add_evaluate, add_report, _add_benchmark, _add_demo):
        add(sub)
    return parser


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
    check_output(output, source_files(args.weights), force=args.force)  # never destroy what was not asked for
    bundle = load_weights(args.weights)
    save_weights(bundle, output, fmt)
    print(f"wrote {output} ({fmt}, variant {bundle.meta.variant}, {bundle.num_classes} classes)")
    return 0


def _export(args: argparse.Namespace, output: Path, fmt: str) -> int:
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.inference.export import (INPUT_LAYOUTS, check_output_path, export_framework, export_model, input_shape,
                                    weights_digest)
    from alexnet_lab.weights.files import load_weights, source_files

    framework = export_framework(fmt, args.framework)
    check_output_path(output, fmt)
    check_output(output, source_files(args.weights), force=args.force)
    bundle = load_weights(args.weights)
    export_model(bundle, output, fmt, framework, weights_sha256=weights_digest(args.weights, bundle.meta))
    shape = ", ".join(str(d) for d in input_shape(bundle.meta, framework))
    print(f"wrote {output} ({fmt}, {framework} model, {INPUT_LAYOUTS[framework]} float32 input [{shape}], "
          f"variant {bundle.meta.variant}, {bundle.num_classes} classes)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from alexnet_lab.verify import VerifyOptions, render_json, render_table, run_verify

    options = VerifyOptions(against=args.against, images=args.images, framework_parity=args.framework_parity,
                            tolerance=args.tolerance)
    report = run_verify(args.weights, options)
    print(render_json(report) if args.json else render_table(report))
    return 0 if report.passed else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from alexnet_lab.train.demo import run_demo

    logging.getLogger("alexnet_lab").setLevel(logging.INFO)
    out = Path(args.out)
    print(f"demo: training AlexNet ('cifar' variant) on the embedded synthetic shapes data -> {out}")
    figures = run_demo(out, args.epochs, force=args.force)
    print(f"run folder:          {figures['run_dir']}")
    print(f"held-out top-1:      {100 * figures['held_out_top1']:.2f}% on {figures['held_out_images']} unseen "
          "synthetic images (chance: 10%)")
    print(f"PyTorch vs Keras:    top-1 agreement {100 * figures['framework_top1_agree']:.0f}%, "
          f"max probability difference {figures['framework_max_prob_diff']:.1e}")
    print(f"report:              {figures['report_html']}")
    return 0


def _quiet_frameworks() -> None:
    # TensorFlow prints start-up chatter to stderr; keep stderr for our own messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _quiet_frameworks()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if args.command is None:
            parser.print_help()
            return EXIT_USER_ERROR
        return args.func(args)
    except AlexnetLabError as exc:
        print(f"alexnet: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("alexnet: interrupted", file=sys.stderr)
        return 130
