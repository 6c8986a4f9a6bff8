"""The CIFAR-10 recipes across seeds (#32): `cifar10-fast` for 3 seeds in PyTorch and in Keras, and
one `cifar10-wide` run (PyTorch), each evaluated on its own held-out 10% split; prints one JSON
summary (per run and per group of seeds: mean ± sample std) and writes `alexnet report` over them.

Each run folder gets RUN/held-out-eval.json, the JSON of
    alexnet evaluate RUN --data RUN/split.json --split test --precision fp32 --crops C --json
with C = 2 (each image and its mirror, as the recipe's own evaluation) for runs with --eval-flip and
1 otherwise, and RUN/held-out-eval-1crop.json with --crops 1. `alexnet report` reads the first.
The split is drawn from the seed, so a seed changes the initialisation, the order of the batches
and which images are validation / held-out. A finished run (eval.json present) is not trained again,
an interrupted one is resumed, so the script can be stopped and started again.

Usage (about 5 hours on 2 AMX CPU cores, one run at a time; --dry-run prints the commands):
    PYTHONPATH=src .venv/bin/python benchmarks/cifar_seeds.py --data ~/.cache/alexnet-lab/train \\
        --out runs/seeds [--seeds 0 1 2] [--frameworks torch keras] [--fast-flags "--ema-decay 0.99"] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

FAST_MARGIN = 0.805  # #32: cifar10-fast at >= 80.5% held-out top-1 for every seed, in <= 5 epochs
WIDE_AIM = 0.90  # #32: cifar10-best (here cifar10-wide) at 90%
ALEXNET = [sys.executable, "-m", "alexnet_lab"]


def plan(args: argparse.Namespace) -> list[dict]:
    """The runs: name, framework, recipe, seed and extra train flags."""
    runs = [{"name": f"fast-{fw}-seed{seed}", "framework": fw, "recipe": "cifar10-fast", "seed": seed,
             "flags": shlex.split(args.fast_flags)} for fw in args.frameworks for seed in args.seeds]
    if not args.no_wide:
        runs.append({"name": f"wide-torch-seed{args.seeds[0]}", "framework": "torch", "recipe": "cifar10-wide",
                     "seed": args.seeds[0], "flags": shlex.split(args.wide_flags)})
    return runs


def train_command(run: dict, folder: Path, args: argparse.Namespace) -> list[str]:
    if (folder / "config.json").is_file():  # started before: continue it exactly as configured
        return [*ALEXNET, "train", "--resume", "--out", str(folder)]
    return [*ALEXNET, "train", "--data", args.data, "--recipe", run["recipe"], "--framework", run["framework"],
            "--seed", str(run["seed"]), "--data-mode", "memory", *run["flags"], "--out", str(folder)]


def eval_command(run: dict, folder: Path, crops: int) -> list[str]:
    return [*ALEXNET, "evaluate", str(folder), "--data", str(folder / "split.json"), "--split", "test",
            "--precision", "fp32", "--framework", run["framework"], "--crops", str(crops), "--json"]


def recipe_crops(folder: Path) -> int:
    """2 for a run that validates flip-averaged (--eval-flip), else 1."""
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    return 2 if config.get("eval_flip", True) else 1  # not started yet (dry run): the recipes flip


def execute(command: list[str], dry_run: bool, stdout: Path | None = None) -> None:
    print(("$ " if dry_run else "+ ") + shlex.join(command) + (f" > {stdout}" if stdout else ""), file=sys.stderr)
    if dry_run:
        return
    if stdout is None:
        subprocess.run(command, check=True)
        return
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    stdout.write_text(result.stdout)


def run_one(run: dict, args: argparse.Namespace) -> Path:
    folder = args.out / run["name"]
    if not (folder / "eval.json").is_file():
        execute(train_command(run, folder, args), args.dry_run)
    crops = recipe_crops(folder)
    execute(eval_command(run, folder, crops), args.dry_run, folder / "held-out-eval.json")
    if crops != 1:
        execute(eval_command(run, folder, 1), args.dry_run, folder / "held-out-eval-1crop.json")
    return folder


def summary(runs: list[dict], folders: list[Path]) -> dict:
    from alexnet_lab.evaluate import load_run
    from alexnet_lab.evaluate.report_seeds import group_figures, held_out_top1, seed_groups

    summaries = [load_run(folder) for folder in folders]
    per_run = []
    for run, found in zip(runs, summaries):
        single = json.loads((found.path / "held-out-eval-1crop.json").read_text()).get("top1") \
            if (found.path / "held-out-eval-1crop.json").is_file() else held_out_top1(found)
        per_run.append({**{k: run[k] for k in ("name", "framework", "recipe", "seed")}, "val_top1": found.eval.top1,
                        "held_out_top1": held_out_top1(found), "held_out_top1_single_crop": single,
                        "epochs": found.epochs_done, "wall_seconds": found.wall_seconds})
    groups = [{"runs": [r.name for r in group], **group_figures(group)} for group in seed_groups(summaries)]
    fast = [r for r in per_run if r["recipe"] == "cifar10-fast"]
    wide = [r for r in per_run if r["recipe"] == "cifar10-wide"]
    return {"runs": per_run, "groups": groups,
            "fast_margin_met": bool(fast) and all(r["held_out_top1"] >= FAST_MARGIN and r["epochs"] <= 5 for r in fast),
            "wide_aim_met": bool(wide) and all(r["held_out_top1"] >= WIDE_AIM for r in wide)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the CIFAR-10 training images (class folder) or 'cifar10'")
    parser.add_argument("--out", type=Path, required=True, help="folder for the run folders and the report")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--fast-flags", default="", help="extra train flags for the cifar10-fast runs, one string")
    parser.add_argument("--wide-flags", default="", help="extra train flags for the cifar10-wide run, one string")
    parser.add_argument("--no-wide", action="store_true", help="leave the cifar10-wide run out")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()
    runs = plan(args)
    folders = [run_one(run, args) for run in runs]
    report = [*ALEXNET, "report", *map(str, folders), "--out", str(args.out / "report"), "--force"]
    execute(report, args.dry_run)
    if not args.dry_run:
        print(json.dumps(summary(runs, folders), indent=2))


if __name__ == "__main__":
    main()
