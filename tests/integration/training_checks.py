"""Checks shared by the PyTorch and Keras training tests (same contract, two loops)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.conftest import REPO, run_cli

FINETUNE_CASES = [
    ("head", [], {"fc8"}),
    ("two-phase", ["--head-epochs", "1", "--unfreeze", "2"], {"fc7", "fc8"}),
]


def metrics(run: Path) -> list[dict]:
    """The rows of RUN/metrics.jsonl (none yet: empty list)."""
    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def four_class_folder(tmp_path_factory, per_class: int) -> Path:
    """A class folder of 4 synthetic classes: another class set than the 10-class pretraining."""
    from alexnet_lab.data import SyntheticSpec, write_synthetic_folder

    return write_synthetic_folder(SyntheticSpec(num_classes=4, size=32, per_class=per_class, seed=9),
                                  tmp_path_factory.mktemp("four") / "data")


def changed_layers(before, after) -> dict[str, bool]:
    """Per layer: did any tensor of the same shape change between the two bundles?"""
    layers = sorted({key.split(".")[0] for key in before.tensors})
    return {layer: any(not np.array_equal(before.tensors[k], after.tensors[k])
                       for k in before.tensors if k.split(".")[0] == layer and k in after.tensors
                       and before.tensors[k].shape == after.tensors[k].shape) for layer in layers}


def finetune_and_check(train_args: list[str], run: Path, pretrained: Path, folder: Path, strategy: str,
                       extra: list[str], trained: set[str]) -> dict:
    """Fine-tune through the CLI; assert that exactly `trained` moved and frozen BatchNorm did not.
    Returns the run's config.json."""
    from alexnet_lab.weights.files import load_weights

    result = run_cli(*train_args, "--data", str(folder), "--weights", str(pretrained), "--strategy", strategy,
                     "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--augment", "none", *extra,
                     "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = load_weights(pretrained), load_weights(run / "last.safetensors")
    assert after.num_classes == 4 and after.meta.preprocess == before.meta.preprocess
    changed = changed_layers(before, after)
    assert {layer for layer, moved in changed.items() if moved} == trained - {"fc8"}  # fc8 changed shape (10 -> 4)
    frozen_bn = [k for k in before.tensors if k.startswith("bn")]
    assert all(np.array_equal(before.tensors[k], after.tensors[k]) for k in frozen_bn), "frozen BatchNorm moved"
    return json.loads((run / "config.json").read_text())


def kill_in_epoch_2_then_resume(train_args: list[str], run: Path) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Start `alexnet train_args... --epochs 3 --out run`, SIGKILL it inside epoch 2, resume with a
    bare `--resume` (the framework comes from config.json), and check the history is continuous.
    Returns the metrics rows and the resumed process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-m", "alexnet_lab", *train_args, "--epochs", "3", "--out", str(run)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(metrics(run)) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 2
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [row["epoch"] for row in metrics(run)] == [1]
    resumed = run_cli("train", "--resume", "--out", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(np.isfinite(row["val_loss"]) for row in rows)
    assert (run / "eval.json").is_file()
    return rows, resumed
