"""`alexnet train`: its flags map one-to-one onto RunConfig fields."""

from __future__ import annotations

import argparse
import json
import typing
from dataclasses import fields

from alexnet_lab.cli.flags import framework_names
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.train.config import CHOICES, RunConfig

HELP = {
    "data": "class folder (optionally with train/ val/ test/), list file of 'path label' lines, or 'synthetic'",
    "data_dir": "local copy of a named data set", "val_data": "separate validation folder or list file",
    "framework": framework_names(default=None), "variant": "owt, original, cifar or cifar-wide (both 32x32-native)",
    "weights": "none, a registry name (imagenet, bvlc), a weight file / run folder or hf://OWNER/REPO[@REVISION]",
    "strategy": "scratch, head, finetune or two-phase", "train_layers": "layers --strategy finetune trains",
    "skip_layers": "layers re-initialised before training", "unfreeze": "two-phase: 'all' or the last N layers",
    "recipe": "named recipe, one of the choices shown (explicit flags override its values; the README's recipe "
              "table says what each does)",
    "augment": "training views: none, cifar (pad-4 random crop + flip), cifar-cutout (the same + an 8x8 square in "
               "the image's mean colour), imagenet (random-resized crop + flip) or flip",
    "out": "run folder", "resume": "continue the run in --out from its last checkpoint",
    "channels_last": "auto, on or off",
    "precision": "training compute precision (mixed: the weights stay float32): auto (bf16 where native, fp16 on GPUs "
                 "without bf16, else fp32), fp32, bf16 or fp16; also spelled --train-precision",
    "compile": "PyTorch: torch.compile the training step: auto (on for CUDA only; slower on the CPU), on or off",
    "data_mode": "auto (stream folders, list files and shards; synthetic and cifar10 in memory), memory (decode "
                 "everything first) or stream (decode per batch: PyTorch's loader workers, or the training process on a CPU "
                 "with at most 4 cores; Keras' tf.data map)",
    "cache_dir": "streamed data: decode once into a memory-mapped store in this folder, reused by later runs",
    "cache_format": "the cache's images: raw (uint8 pixels) or jpeg (re-encoded at the store size: a fraction of the "
                    "size, lossy; docs/data.md)",
    "cache_quality": "JPEG quality of --cache-format jpeg (1-100)",
    "decoder": "JPEG decoding: draft (reduced-size DCT decoding, still >= the resize; faster) or pil (full size)",
    "limit_steps": "end every epoch after this many steps (smoke tests, benchmarks); 0: whole epochs",
    "ema_decay": "moving average of the weights and BatchNorm statistics, updated every step (decay warmed up); "
                 "validated, picked as best and saved instead of the live weights; 0: off (docs/recipes.md)",
    "conv1_init": "scratch runs: random, or whiten (conv1 set from the training images' patch covariance so "
                  "its responses are decorrelated; the filters stay trainable; docs/recipes.md)",
    "eval_flip": "validation and the run's eval average each image with its mirror (as evaluate --crops 2)",
    "distribute": "Keras on TensorFlow only: none, mirrored (all GPUs of this machine) or multi-worker (machines "
                  "listed in TF_CONFIG); --batch-size stays the global batch. PyTorch: start with torchrun instead",
}

# other spellings of a flag: --train-precision says which precision it is (predict's is --inference-precision)
ALIASES = {"precision": ("--train-precision",)}


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
        names = [f"--{field.name.replace('_', '-')}", *ALIASES.get(field.name, ())]
        p.add_argument(*names, dest=field.name, default=None,
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
    run = RunFolder(run_dir)
    evaluation = json.loads(run.eval.read_text())
    print(f"run folder: {run_dir}")
    print(f"best model: {run.best_weights} (val top-1 {100 * evaluation['top1']:.2f}%, "
          f"top-5 {100 * evaluation['top5']:.2f}%)")
    return 0
