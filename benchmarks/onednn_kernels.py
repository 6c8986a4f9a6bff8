"""Which oneDNN kernels our bf16 (or fp32) training and inference steps run, and how long each took.

Runs a few steps of the model in a child process with ONEDNN_VERBOSE=1 and sums oneDNN's own
`exec` lines by primitive and implementation. On a CPU with AMX, the convolutions and matrix
products should name `amx` (e.g. `brg_conv_fwd:avx10_1_512_amx`); an implementation named `ref`
or `gemm:ref` is oneDNN's slow reference fallback. Work that does not go through oneDNN at all
(pooling, LRN and the optimizer in PyTorch) is listed from torch.profiler as the top ATen ops.

    PYTHONPATH=src .venv/bin/python benchmarks/onednn_kernels.py --framework torch --variant original
    PYTHONPATH=src .venv/bin/python benchmarks/onednn_kernels.py --framework keras --precision bf16

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
framework, variant, precision, batch, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if framework == "torch":
    import torch, torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from alexnet_lab.frameworks.torch.device import resolve_precision
    from alexnet_lab.frameworks.torch.model import build_model, cast_for_inference
    torch.manual_seed(0)
    model = build_model(variant, 1000).to(memory_format=torch.channels_last)
    size = model.spec.input_size
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))
    autocast = resolve_precision(precision, torch.device("cpu")).autocast(torch.device("cpu"))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    def train():
        with autocast:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    train()
    print("@@train", flush=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    top = [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1000 / steps, "calls": e.count} for e in ops]
    model.eval()
    infer = cast_for_inference(model, precision if precision == "bf16" else "fp32")
    xi = x.to(next(infer.parameters()).dtype)
    with torch.inference_mode():
        infer(xi)
        print("@@infer", flush=True)
        for _ in range(steps):
            infer(xi)
    print("@@top " + json.dumps(top), flush=True)
else:
    import keras
    from alexnet_lab.frameworks import keras as keras_backend
    from alexnet_lab.train.keras.precision import KerasPrecision, dtype_policy
    with dtype_policy(KerasPrecision(precision)):
        model = keras_backend.build_model(variant, 1000)
    size = model.input_shape[1]
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3), dtype=np.float32); y = rng.integers(0, 1000, batch)
    model.train_on_batch(x, y)
    print("@@train", flush=True)
    for _ in range(steps):
        model.train_on_batch(x, y)
    infer = keras_backend.cast_for_inference(model, precision if precision == "bf16" else "fp32")
    infer.predict_on_batch(x)
    print("@@infer", flush=True)
    for _ in range(steps):
        infer.predict_on_batch(x)
    print("@@top []", flush=True)
"""


def summarise(lines: list[str], steps: int) -> list[dict]:
    """oneDNN exec lines -> one row per (primitive, implementation, prop kind), ms per step."""
    totals: dict[tuple, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for line in lines:
        fields = line.split(",")
        if len(fields) < 8 or fields[2] != "primitive" or fields[3] != "exec":
            continue
        key = (fields[5], fields[6], fields[7])
        totals[key][0] += 1
        totals[key][1] += float(fields[-1])
    rows = [{"primitive": p, "implementation": impl, "prop_kind": kind, "calls_per_step": n / steps,
             "ms_per_step": ms / steps, "reference_fallback": "ref" in impl.split(":")[0].split("_")}
            for (p, impl, kind), (n, ms) in totals.items()]
    return sorted(rows, key=lambda r: -r["ms_per_step"])


def run(framework: str, variant: str, precision: str, batch: int, steps: int) -> dict:
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if framework == "keras":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    child = subprocess.run([sys.executable, "-c", CHILD, framework, variant, precision, str(batch), str(steps)],
                           env=env, capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"the measured process failed: {(child.stderr.strip().splitlines() or ['no output'])[-1]}")
    out = child.stdout.splitlines()
    marks = {line.split()[0]: i for i, line in enumerate(out) if line.startswith("@@")}
    train = summarise(out[marks["@@train"] : marks["@@infer"]], steps)
    infer = summarise(out[marks["@@infer"] : marks["@@top"]], steps)
    top = json.loads(out[marks["@@top"]].split(" ", 1)[1])
    fallbacks = [r for r in train + infer if r["reference_fallback"]]
    return {"framework": framework, "variant": variant, "precision": precision, "batch": batch, "steps": steps,
            "train_onednn": train, "infer_onednn": infer, "train_top_ops": top,
            "reference_fallbacks": fallbacks,
            "amx_share_of_onednn_train_ms": _share(train, "amx"), "amx_share_of_onednn_infer_ms": _share(infer, "amx")}


def _share(rows: list[dict], word: str) -> float:
    total = sum(r["ms_per_step"] for r in rows)
    return sum(r["ms_per_step"] for r in rows if word in r["implementation"]) / total if total else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("torch", "keras"), default="torch")
    parser.add_argument("--variant", default="owt", help="owt, original or cifar")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.framework, args.variant, args.precision, args.batch, args.steps), indent=2))


if __name__ == "__main__":
    main()
