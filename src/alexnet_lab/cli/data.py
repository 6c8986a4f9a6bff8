"""`alexnet shards`: write a class folder as WebDataset-style tar shards (KEY.jpg + KEY.cls) with a
manifest.json that reading checks."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_shards(sub) -> None:
    p = sub.add_parser("shards", help="write a class folder as tar shards (KEY.jpg + KEY.cls) for streaming",
                       description="A folder with train/ val/ test/ gets one shard folder per split. Train from "
                       "the result with `alexnet train --data OUT_DIR`.")
    p.add_argument("folder", help="class folder (one sub-folder per class), optionally with train/ val/ test/")
    p.add_argument("out_dir", help="folder for the shards, classes.txt and manifest.json")
    p.add_argument("--per-shard", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="shuffles images across shards (default 0)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty: the shards, classes.txt "
                   "and manifest.json an earlier `alexnet shards` wrote there are removed first; other files stay")
    p.set_defaults(func=cmd_shards)


SHARD_OUTPUTS = ("classes.txt", "manifest.json", "*.tar", "train/", "val/", "test/")  # what a shard folder holds


def check_shards_output(folder: Path, out: Path, force: bool) -> None:
    """The output policy for a shard folder: never inside the input (its shards would become a
    class next time); earlier shards, manifest or split folders there only with `force` (old
    shards would be read beside the new ones); other files are not ours and stay."""
    from alexnet_lab.core.fileio import check_output

    check_output(out, [folder], force=force, kind="folder", owned=SHARD_OUTPUTS)


def cmd_shards(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from alexnet_lab.core.errors import UserInputError
    from alexnet_lab.data import read_folder_splits
    from alexnet_lab.data.shards import clear_shards, write_shards

    folder, out = Path(args.folder), Path(args.out_dir)
    if not folder.is_dir():
        raise UserInputError(f"'{folder}' is not a folder; pass a class folder (one sub-folder per class).")
    check_shards_output(folder, out, args.force)
    splits = read_folder_splits(folder)
    if args.force:
        removed = clear_shards(out)
        if removed:
            print(f"removed {len(removed)} file(s) of earlier shards in {out}")
    for name, index in splits.items():
        target = out if name == "all" else out / name
        with tqdm(total=len(index), desc=f"shards {name}", unit="img", disable=None) as bar:
            written = write_shards(index, target, args.per_shard, args.seed, progress=bar.update)
        print(f"{name}: {len(index)} images in {len(written)} shard(s) -> {target}")
    return 0
