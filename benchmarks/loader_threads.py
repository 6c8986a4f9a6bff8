"""Loader workers against step threads for PyTorch training on real photos on the CPU (#29).

Each configuration (loader workers, the step's intra-op threads, optionally OMP_WAIT_POLICY) runs
`bench.data_bench.measure_data` for ours and for the torchvision recipe in a fresh process, the
configurations alternating round by round, so that a drift of the machine's speed spreads over all
of them. What `train.torch.data.loader_workers` picks on this machine is printed beside them.

Run: `python benchmarks/loader_threads.py --folder FOLDER [--rounds 2] [--steps 5]` (FOLDER: class
folders of JPEGs, e.g. `benchmarks/jpeg_data.make_jpeg_folder(Path("/tmp/photos640"), 640,
classes=4)`). Prints one JSON object: per configuration and side, end to end, step alone and loader
alone in img/s, each as the median and the list of rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

# (label, side, loader workers, step threads, extra environment)
CONFIGS = (
    ("1 worker, 1 thread", "ours", 1, 1, {}),
    ("1 worker, 2 threads", "ours", 1, 2, {}),
    ("1 worker, 2 threads, passive wait", "ours", 1, 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("no worker, 2 threads", "ours", 0, 2, {}),
    ("1 worker, 1 thread", "reference", 1, 1, {}),
    ("1 worker, 2 threads", "reference", 1, 2, {}),
    ("no worker, 2 threads", "reference", 0, 2, {}),
)
FIGURES = ("train_img_s", "step_img_s", "loader_img_s")


def one(side: str, workers: int, threads: int, folder: str, steps: int) -> dict:
    """measure_data in this process with exactly `workers` loader workers (0 included)."""
    import alexnet_lab.bench.data_bench as data_bench
    from alexnet_lab.bench.settings import BenchSettings

    data_bench.loader_workers = lambda settings: workers  # 0 would otherwise mean "what train picks"
    settings = BenchSettings(batch=32, classes=4, threads=threads, train_steps=steps, view_samples=16)
    result = data_bench.measure_data(side, settings, folder)
    return {key: result[key] for key in FIGURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--one", nargs=3, metavar=("SIDE", "WORKERS", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        side, workers, threads = args.one
        print(json.dumps(one(side, int(workers), int(threads), args.folder, args.steps)))
        return
    rounds: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for label, side, workers, threads, env in CONFIGS:
            command = [sys.executable, __file__, "--folder", args.folder, "--steps", str(args.steps),
                       "--one", side, str(workers), str(threads)]
            done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
            rounds.setdefault((label, side), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    import torch

    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.torch.data import loader_workers

    picked = loader_workers(0, StreamedImages([], TORCHVISION_IMAGENET), torch.device("cpu"))
    report = {"cores": os.cpu_count(), "train_picks_workers": picked, "load_average": os.getloadavg(),
              "configs": [{"config": label, "side": side,
                           **{key: {"median": statistics.median(r[key] for r in results),
                                    "rounds": [round(r[key], 1) for r in results]} for key in FIGURES}}
                          for (label, side), results in rounds.items()]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
