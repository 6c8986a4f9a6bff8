"""What widening the 32x32 `cifar` AlexNet would cost per training step, on this machine.

The lever `cifar10-best` leaves for later: wider convolutions within AlexNet's shape (5 conv, 3 fc,
pools after conv1, conv2 and conv5). Prints one JSON object: for each width, the median training
step (batch 128, SGD momentum, bf16 autocast where the CPU has native bf16, else fp32,
channels-last) over alternating rounds in one process, its spread, and its cost relative to the
`cifar` variant. Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/cifar_widths.py [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
import torch.nn.functional as F

from alexnet_lab.core.hardware import cpu_has_native_bf16
from alexnet_lab.core.spec import CIFAR
from alexnet_lab.frameworks.torch.model import build_model

WIDTHS = {
    "cifar (64-128-256-192-192)": (64, 128, 256, 192, 192),
    "AlexNet's own 96-256-384-384-256": (96, 256, 384, 384, 256),
    "even 128-256-256-256-256": (128, 256, 256, 256, 256),
}


def widened(widths: tuple[int, ...]):
    """The `cifar` spec with other conv widths (same kernels, pools and BatchNorm)."""
    convs = tuple(dataclasses.replace(conv, out_channels=width) for conv, width in zip(CIFAR.convs, widths))
    return dataclasses.replace(CIFAR, convs=convs)


def step_seconds(widths: tuple[int, ...], steps: int, bf16: bool, batch: int = 128) -> float:
    torch.manual_seed(0)
    model = build_model(widened(widths), num_classes=10, dropout=0.3).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    bf16 = cpu_has_native_bf16()
    rounds: dict[str, list[float]] = {name: [] for name in WIDTHS}
    for _ in range(args.rounds):  # alternate, so background load hits every width alike
        for name, widths in WIDTHS.items():
            rounds[name].append(step_seconds(widths, args.steps, bf16))
    base = statistics.median(rounds[next(iter(WIDTHS))])
    result = {"precision": "bf16" if bf16 else "fp32", "batch": 128, "widths": {}}
    for name, seconds in rounds.items():
        median = statistics.median(seconds)
        result["widths"][name] = {
            "step_ms": round(1000 * median, 1), "step_ms_rounds": [round(1000 * s, 1) for s in seconds],
            "cost_vs_cifar": round(median / base, 2), "epoch_s_40k_images": round(40000 / 128 * median),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
