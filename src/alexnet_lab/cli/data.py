"""`alexnet shards`: write a class folder as WebDataset-style tar shards (KEY.jpg + KEY.cls)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_shards(sub) -> None:
    p = sub.add_parser("shards", help="write a class folder as tar shards (KEY.jpg + KEY.cls) for streaming",
                       description="A folder with train/ val/ test/ gets one shard folder per split. Train from "
                       "the result with `alexnet train --data OUT_DIR`.")
    p.add_argument("folder", help="class folder (one sub-folder per class), optionally with train/ val/ test/")
    p.add_argument("out_dir", help="folder for the shards and classes.txt")
    p.add_argument("--per-shard", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="shuffles images across shards (default 0)")
    p.set_defaults(func=cmd_shards)


def cmd_shards(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.data import read_folder_splits
    from alexnet_lab.data.shards import write_shards

    folder, out = Path(args.folder), Path(args.out_dir)
    if not folder.is_dir():
        raise UserInputError(f"'{folder}' is not a folder; pass a class folder (one sub-folder per class).")
    splits = read_folder_splits(folder)
    for name, index in splits.items():
        target = out if name == "all" else out / name
        with tqdm(total=len(index), desc=f"shards {name}", unit="img", disable=None) as bar:
            written = write_shards(index, target, args.per_shard, args.seed, progress=bar.update)
        print(f"{name}: {len(index)} images in {len(written)} shard(s) -> {target}")
    return 0
