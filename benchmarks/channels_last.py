"""Channels-last vs contiguous (NCHW) memory layout for our PyTorch model on this machine.

Prints one JSON object: training and inference images/s of both layouts, alternated in one
process (so background load hits both alike), and the ratios. Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/channels_last.py [--variant owt] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from alexnet_lab.frameworks.torch.model import build_model


def images_per_second(step, batch: int, warmup: int = 2, runs: int = 4) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(runs):
        step()
    return batch * runs / (time.perf_counter() - start)


def measure(variant: str, channels_last: bool, batch: int) -> dict:
    torch.manual_seed(0)
    size = 32 if variant == "cifar" else (227 if variant == "original" else 224)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(variant, 1000, input_size=size).to(memory_format=layout)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=layout)
    y = torch.randint(0, 1000, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)

    def train_step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    train = images_per_second(train_step, batch)
    model.eval()
    with torch.inference_mode():
        infer = images_per_second(lambda: model(x), batch)
    return {"train_img_s": train, "infer_img_s": infer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="owt")
    parser.add_argument("--batch", type=int, default=0, help="default: 64 (128 for cifar)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batch = args.batch or (128 if args.variant == "cifar" else 64)
    rounds = {"contiguous": [], "channels_last": []}
    for _ in range(args.rounds):
        rounds["contiguous"].append(measure(args.variant, False, batch))
        rounds["channels_last"].append(measure(args.variant, True, batch))
    best = {name: {key: max(r[key] for r in runs) for key in runs[0]} for name, runs in rounds.items()}
    print(json.dumps({"variant": args.variant, "batch": batch, "threads": torch.get_num_threads(), "best": best,
                      "train_ratio": best["channels_last"]["train_img_s"] / best["contiguous"]["train_img_s"],
                      "infer_ratio": best["channels_last"]["infer_img_s"] / best["contiguous"]["infer_img_s"],
                      "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
