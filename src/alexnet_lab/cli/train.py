"""`alexnet train`, `evaluate` and `report`: flags map one-to-one onto RunConfig fields."""

from __future__ import annotations

import argparse
import json
import typing
from dataclasses import fields
from pathlib import Path

from alexnet_lab.train.config import CHOICES, RunConfig

HELP = {
    "data": "class folder (optionally with train/ val/ test/), list file of 'path label' lines, or 'synthetic'",
    "data_dir": "local copy of a named data set", "val_data": "separate validation folder or list file",
    "framework": "torch or keras", "variant": "owt, original or cifar (32x32-native)",
    "weights": "none, a registry name (imagenet, bvlc) or a weight file / run folder",
    "strategy": "scratch, head, finetune or two-phase", "train_layers": "layers --strategy finetune trains",
    "skip_layers": "layers re-initialised before training", "unfreeze": "two-phase: 'all' or the last N layers",
    "recipe": "named recipe (explicit flags override it): cifar10-scratch, cifar10-finetune, synthetic-demo",
    "out": "run folder", "resume": "continue the run in --out from its last checkpoint",
    "channels_last": "auto, on or off", "precision": "auto, fp32, bf16 or fp16",
    "compile": "PyTorch: torch.compile the training step: auto (on for CUDA only; slower on the CPU), on or off",
    "distribute": "Keras on TensorFlow only: none, mirrored (all GPUs of this machine) or multi-worker (machines "
                  "listed in TF_CONFIG); --batch-size stays the global batch. PyTorch: start with torchrun instead",
}


def _flag_type(field) -> dict:
    hint = typing.get_type_hints(RunConfig)[field.name]
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:
        return {"nargs": "*", "metavar": "LAYER"}
    base = next((t for t in (int, float, str) if hint is t or t in typing.get_args(hint)), str)
    return {"type": base}


def _choices() -> dict[str, tuple[str, ...]]:
    """Flag -> its choices, shown by --help (RunConfig checks them, with a close match)."""
    from alexnet_lab.train.recipes import RECIPES

    return {**CHOICES, "recipe": tuple(RECIPES)}


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune AlexNet; writes a run folder",
                       description="Every flag is one field of RunConfig. --resume continues the run in --out "
                       "exactly as configured (only a larger --epochs may extend it); the run folder is locked "
                       "while a process trains in it.")
    choices = _choices()
    for field in fields(RunConfig):
        if field.name == "extra":
            continue
        default = field.default if not callable(getattr(field, "default_factory", None)) else None
        text = HELP.get(field.name, field.name.replace("_", " "))
        kwargs = _flag_type(field)
        if field.name in choices:
            kwargs["metavar"] = "{" + ",".join(choices[field.name]) + "}"
        p.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, default=None,
                       help=f"{text} (default: {default})", **kwargs)
    p.set_defaults(func=cmd_train)


def given_values(args: argparse.Namespace) -> dict:
    """The settings the command line gives: a recipe's, overridden by explicit flags."""
    from alexnet_lab.train.recipes import get_recipe

    values = get_recipe(args.recipe).as_dict() if args.recipe else {}
    explicit = {f.name: getattr(args, f.name) for f in fields(RunConfig)
                if f.name != "extra" and getattr(args, f.name, None) is not None}
    values.update(explicit)
    for key in ("train_layers", "skip_layers"):
        if key in values:
            values[key] = tuple(values[key])
    return values


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults < recipe < explicit flags. With --resume only --out counts here: the run's
    config.json decides the rest, and train.resume checks the given flags against it."""
    values = given_values(args)
    if values.get("resume"):
        return RunConfig(resume=True, **({"out": values["out"]} if "out" in values else {}))
    return RunConfig(**values)


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    from alexnet_lab.train.job import run_training

    logging.getLogger("alexnet_lab").setLevel(logging.INFO)
    config = config_from_args(args)
    run_dir = run_training(config, given_values(args) if config.resume else None)
    if run_dir is None:  # a distributed run's other processes: rank 0 / the chief reports
        return 0
    evaluation = json.loads((run_dir / "eval.json").read_text())
    print(f"run folder: {run_dir}")
    print(f"best model: {run_dir / 'best.safetensors'} (val top-1 {100 * evaluation['top1']:.2f}%, "
          f"top-5 {100 * evaluation['top5']:.2f}%)")
    return 0


def add_precision_flags(p, calibration_default: str) -> None:
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8", "auto"),
                   help="fp32 (default, exact); bf16: weights held in bfloat16, native and faster on CPUs with "
                   "AVX512-BF16 or AMX and on recent GPUs, emulated and slower elsewhere; auto: bf16 where native, "
                   "else fp32; int8: on the CPU, post-training quantized (PyTorch's int8 kernels; TensorFlow Lite for "
                   "Keras, about a minute to convert owt), top-1 within a fraction of a point (docs/performance.md)")
    p.add_argument("--calibration", metavar="DATA", help="int8: images that set the activation ranges (class folder, "
                   f"list file or split.json); {calibration_default}")
    p.add_argument("--calibration-images", type=int, default=256, metavar="N",
                   help="int8: how many calibration images to draw (default 256)")


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="top-1/top-5, loss, per-class accuracy and confusion matrix on a data set")
    p.add_argument("weights", help="weight file, registry name or run folder")
    p.add_argument("--data", required=True,
                   help="class folder (with train/val/test or not), list file, a run folder's split.json or 'synthetic'")
    p.add_argument("--framework", default="torch", help="torch (default) or keras")
    p.add_argument("--split", default=None, help="split of a train/val/test folder (default: test, else val, else all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic evaluation images (default 1)")
    p.add_argument("--data-dir", default=None, help="local copy of the CIFAR-10 python batches for --data cifar10")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps")
    add_precision_flags(p, "default: the train split of --data if it has one, else the evaluated images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from alexnet_lab.evaluate.on_data import evaluate_source
    from alexnet_lab.inference.predict import resolve_precision

    args.precision = resolve_precision(args.precision, args.framework, args.device)  # auto -> what runs here
    result, split = evaluate_source(args.weights, args.data, args.framework, args.split, args.seed, strict=args.strict,
                                    device=args.device, data_dir=args.data_dir, precision=args.precision,
                                    calibration=args.calibration, calibration_images=args.calibration_images)
    if args.json:
        print(json.dumps({**result.to_json_dict(), "precision": args.precision}))
        return 0
    print(f"{args.weights} on {args.data} [{split}], {result.num_images} images ({args.framework}, {args.precision})")
    print(f"top-1 {100 * result.top1:.2f}%   top-5 {100 * result.top5:.2f}%   loss {result.loss:.4f}")
    width = max(len(name) for name in result.class_names)
    for name, accuracy in result.per_class.items():
        print(f"  {name:{width}s}  {'n/a' if accuracy is None else f'{100 * accuracy:6.2f}%'}")
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="Markdown + HTML report comparing run folders side by side")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report", help="folder (or .md/.html name) for the report (default: report)")
    p.add_argument("--force", action="store_true", help="replace an existing report.md / report.html")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.evaluate import write_report
    from alexnet_lab.evaluate.report import output_paths

    for path in output_paths(Path(args.out)):  # never replace an earlier report unasked
        check_output(path, force=args.force)
    md_path, html_path = write_report([Path(r) for r in args.runs], Path(args.out))
    print(f"report: {md_path}\n        {html_path}")
    return 0
