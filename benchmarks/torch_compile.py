"""torch.compile against eager PyTorch for our model, with the project's CPU defaults (fp32,
channels-last, foreach SGD).

Prints one JSON object: how long compiling took, training and inference images/s of the eager
and the compiled model (inference also compiled with inductor's weight freezing), alternated
round by round in one process so background load hits all alike, the ratios to eager, and how
far the compiled logits are from the eager ones. Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/torch_compile.py [--variant owt] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F

from alexnet_lab.bench.settings import timed
from alexnet_lab.frameworks.torch.model import build_model


def images_per_second(step, batch: int, runs: int) -> float:
    return batch / timed(step, 0, runs)


def seconds(step) -> float:
    """How long one call takes (the first call of a compiled model: its compile time)."""
    return timed(step, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="owt")
    parser.add_argument("--batch", type=int, default=0, help="default: 64 (128 for cifar)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=4, help="timed steps per round and model")
    args = parser.parse_args()
    batch = args.batch or (128 if args.variant == "cifar" else 64)
    size = 32 if args.variant == "cifar" else (227 if args.variant == "original" else 224)
    torch.manual_seed(0)
    eager = build_model(args.variant, 1000, input_size=size).to(memory_format=torch.channels_last)
    copies = {"eager": eager, "compiled": copy.deepcopy(eager)}
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))
    nets = {"eager": eager, "compiled": torch.compile(copies["compiled"])}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, foreach=True) for name, m in copies.items()}

    def train_step(name):
        def step():
            loss = F.cross_entropy(nets[name](x), y)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
        return step

    for model in copies.values():
        model.train()
    compile_s = {"train": seconds(train_step("compiled"))}
    train_step("eager")()
    train_step("compiled")()  # a second step: optimizer state now exists in both
    train = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for name in train:
            train[name].append(images_per_second(train_step(name), batch, args.runs))

    for model in copies.values():
        model.eval()
    frozen_model = copy.deepcopy(copies["compiled"])
    frozen = torch.compile(frozen_model)
    infer_nets = {"eager": eager, "compiled": nets["compiled"], "compiled_frozen": frozen}
    with torch.no_grad():
        compile_s["infer"] = seconds(lambda: nets["compiled"](x))
        with inductor_config.patch(freezing=True):
            compile_s["infer_frozen"] = seconds(lambda: frozen(x))
        eager_logits = copies["compiled"](x)  # the module itself runs eagerly: same weights, no compiling
        difference = {name: float((net(x) - eager_logits).abs().max()) for name, net in infer_nets.items()
                      if name != "eager"}
        infer = {name: [] for name in infer_nets}
        for _ in range(args.rounds):
            for name, net in infer_nets.items():
                infer[name].append(images_per_second(lambda net=net: net(x), batch, args.runs))
    median = {"train_img_s": {k: statistics.median(v) for k, v in train.items()},
              "infer_img_s": {k: statistics.median(v) for k, v in infer.items()}}
    print(json.dumps({
        "variant": args.variant, "batch": batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "compile_seconds": compile_s, "median": median,
        "train_ratio": median["train_img_s"]["compiled"] / median["train_img_s"]["eager"],
        "infer_ratio": median["infer_img_s"]["compiled"] / median["infer_img_s"]["eager"],
        "infer_frozen_ratio": median["infer_img_s"]["compiled_frozen"] / median["infer_img_s"]["eager"],
        "max_abs_logit_difference": difference, "rounds": {"train_img_s": train, "infer_img_s": infer},
    }, indent=2))


if __name__ == "__main__":
    main()
