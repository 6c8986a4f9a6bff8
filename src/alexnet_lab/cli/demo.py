"""`alexnet demo`: the main job on the embedded synthetic data, no download."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on embedded data (no download)")
    p.add_argument("--out", default="runs/demo", help="folder for the demo's files (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --out (refused otherwise)")
    p.set_defaults(func=cmd_demo)


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
