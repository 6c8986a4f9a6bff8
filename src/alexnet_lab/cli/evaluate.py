"""`alexnet evaluate` (weights on a data set) and `alexnet report` (runs compared)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alexnet_lab.cli.flags import DEVICE_HELP, FRAMEWORK_HELP, WEIGHTS_HELP
from alexnet_lab.cli.predict import add_precision_flags
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK


def add_evaluate(sub) -> None:
    from alexnet_lab.evaluate.dataset_eval import CROPS

    p = sub.add_parser("evaluate", help="top-1/top-5, loss, per-class accuracy and confusion matrix on a data set")
    p.add_argument("weights", help=WEIGHTS_HELP)
    p.add_argument("--data", required=True,
                   help="class folder (with train/val/test or not), list file, a run folder's split.json, 'synthetic', "
                   "'cifar10' or 'imagenet-val' (the ILSVRC2012 validation set under --data-dir, labelled by WordNet "
                   "ID, with the reproduce verdict: docs/reproduce.md)")
    p.add_argument("--framework", default=DEFAULT_FRAMEWORK, help=FRAMEWORK_HELP)
    p.add_argument("--split", default=None, help="split of a train/val/test folder (default: test, else val, else all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic evaluation images (default 1)")
    p.add_argument("--data-dir", default=None, help="local copy of the CIFAR-10 python batches for --data cifar10, or "
                   "of the ImageNet validation set for --data imagenet-val (WordNet-ID class folders, or the flat "
                   "ILSVRC2012_val_*.JPEG folder with the devkit or Kaggle's LOC_val_solution.csv)")
    p.add_argument("--limit-per-class", type=int, default=0, metavar="N",
                   help="--data imagenet-val: the first N images of each class, by file name (default: all)")
    p.add_argument("--crops", type=int, default=1, choices=CROPS,
                   help="views averaged per image (softmax): 1 centre (default, torchvision's published figures), 2 "
                   "centre + its mirror image (a training run's --eval-flip), 5 "
                   "four corners + centre, 10 those and their mirror images (the 2012 paper's test)")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    add_cache_flag(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_precision_flags(p, "default: the train split of --data if it has one, else the evaluated images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def add_cache_flag(p) -> None:
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="read the decoded images from a cache in DIR, built there first if missing (raw pixels at "
                   "the weights' own resize, full-size decoding: the same predictions as the files; docs/data.md)")


def check_cache_dir(cache_dir: str | None, weights: str, *paths: str | None) -> None:
    """Refuse a --cache-dir that is, or lies inside, an input (core.fileio.check_output), before anything is read."""
    if cache_dir is None:
        return
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.weights.files import source_files

    inputs = [Path(p).expanduser() for p in paths if p and Path(p).expanduser().exists()]
    check_output(cache_dir, [*inputs, *source_files(weights)], kind="folder", owned=())


def cmd_evaluate(args: argparse.Namespace) -> int:
    from alexnet_lab.data.imagenet_val import IMAGENET_VAL
    from alexnet_lab.evaluate.dataset_eval import evaluate_source
    from alexnet_lab.inference.predict import resolve_precision

    check_cache_dir(args.cache_dir, args.weights, args.data, args.data_dir)
    args.precision = resolve_precision(args.precision, args.framework, args.device)  # auto -> what runs here
    if args.data == IMAGENET_VAL:
        return _evaluate_imagenet_val(args)
    if args.limit_per_class:
        from alexnet_lab.core.errors import UserInputError

        raise UserInputError(f"--limit-per-class applies to --data {IMAGENET_VAL}; received --data {args.data}.")
    result, split = evaluate_source(args.weights, args.data, args.framework, args.split, args.seed, strict=args.strict,
                                    device=args.device, data_dir=args.data_dir, precision=args.precision,
                                    calibration=args.calibration, calibration_images=args.calibration_images,
                                    crops=args.crops, cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps({**result.to_json_dict(), "precision": args.precision, "crops": args.crops}))
        return 0
    print(f"{args.weights} on {args.data} [{split}], {result.num_images} images ({args.framework}, {args.precision}, "
          f"{args.crops}-crop)")
    _print_result(result)
    return 0


def _print_result(result, limit: int = 0) -> None:
    print(f"top-1 {100 * result.top1:.2f}%   top-5 {100 * result.top5:.2f}%   loss {result.loss:.4f}")
    width = max(len(name) for name in result.class_names)
    rows = list(result.per_class.items())
    for name, accuracy in rows[: limit or len(rows)]:
        print(f"  {name:{width}s}  {'n/a' if accuracy is None else f'{100 * accuracy:6.2f}%'}")
    if limit and len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more classes (--json lists them all)")


def _evaluate_imagenet_val(args: argparse.Namespace) -> int:
    """--data imagenet-val: the layout found (stderr), the figures and the reproduce verdict."""
    from alexnet_lab.data.imagenet_val import LAYOUTS
    from alexnet_lab.evaluate.dataset_eval import evaluate_imagenet_val
    from alexnet_lab.weights.files import load_weights

    bundle = load_weights(args.weights)
    result, val, verdict = evaluate_imagenet_val(
        bundle, args.data_dir, args.weights, args.limit_per_class, args.framework, strict=args.strict,
        device=args.device, precision=args.precision, calibration=args.calibration,
        calibration_images=args.calibration_images, crops=args.crops, cache_dir=args.cache_dir)
    print(f"alexnet: imagenet-val layout {val.layout} ({LAYOUTS[val.layout]}), labels from {val.labels_from}",
          file=sys.stderr)
    if args.json:
        print(json.dumps({**result.to_json_dict(), "precision": args.precision, "crops": args.crops,
                          "layout": val.layout, "labels_from": val.labels_from, "reproduce": verdict.to_json_dict()}))
        return 0
    print(f"{args.weights} on imagenet-val [{val.layout}], {result.num_images} images ({args.framework}, "
          f"{args.precision}, {args.crops}-crop)")
    _print_result(result, limit=20)
    print("\n".join(verdict.lines()))
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="Markdown + HTML report comparing run folders side by side")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report", help="folder (or .md/.html name) for the report (default: report)")
    p.add_argument("--force", action="store_true", help="replace an existing report.md / report.html and its "
                   "assets (never inside a run folder)")
    p.add_argument("--target-top1", type=float, default=0.8,
                   help="the summary gives each run's first epoch at this validation top-1 and the training time "
                        "to it (default 0.8)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from alexnet_lab.evaluate import write_report

    md_path, html_path = write_report([Path(r) for r in args.runs], Path(args.out), target_top1=args.target_top1,
                                      force=args.force)  # the output policy is write_report's first step
    print(f"report: {md_path}\n        {html_path}")
    from alexnet_lab.evaluate import load_run
    from alexnet_lab.evaluate.report_seeds import seed_lines

    for line in seed_lines([load_run(Path(r)) for r in args.runs]):  # runs differing only in the seed
        print(line)
    return 0
