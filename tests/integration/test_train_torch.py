"""PyTorch training end to end, as users run it: run folder, kill -9 + resume, fine-tuning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli

TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "40", "--batch-size", "32",
        "--lr", "0.05", "--augment", "cifar"]


def _metrics(run: Path) -> list[dict]:
    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_run_folder_contents_and_cli_on_it(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", *TINY, "--epochs", "2", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("config.json", "split.json", "metrics.jsonl", "eval.json", "samples.json", "best.safetensors",
                 "last.safetensors", "checkpoints/last.pt", "checkpoints/best.pt", "plots/curves.png",
                 "plots/confusion.png", "plots/samples.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["device"] == "cpu" and config["variant"] == "cifar"
    assert [row["epoch"] for row in _metrics(run)] == [1, 2]
    evaluation = run_cli("evaluate", str(run), "--data", "synthetic", "--json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    doc = json.loads(evaluation.stdout)
    assert {"top1", "top5", "loss", "num_images", "per_class", "confusion"} <= set(doc)
    assert len(doc["confusion"]) == 10 and doc["num_images"] == 1000
    again = run_cli("train", *TINY, "--epochs", "2", "--out", str(run))
    assert again.returncode != 0 and "--resume" in again.stderr


def test_kill_9_during_epoch_2_then_resume(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-m", "alexnet_lab", "train", *TINY, "--synthetic-per-class", "80", "--epochs", "3",
            "--out", str(run)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(_metrics(run)) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 2
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [row["epoch"] for row in _metrics(run)] == [1]
    resumed = run_cli("train", "--resume", "--out", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = _metrics(run)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(np.isfinite(row["val_loss"]) for row in rows)
    assert (run / "eval.json").is_file()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pre") / "run"
    result = run_cli("train", *TINY, "--epochs", "1", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run / "best.safetensors"


@pytest.fixture(scope="module")
def four_class_folder(tmp_path_factory) -> Path:
    from alexnet_lab.data import SyntheticSpec, write_synthetic_folder

    return write_synthetic_folder(SyntheticSpec(num_classes=4, size=32, per_class=30, seed=9),
                                  tmp_path_factory.mktemp("four") / "data")


def _changed(before, after) -> dict[str, bool]:
    layers = sorted({key.split(".")[0] for key in before.tensors})
    return {layer: any(not np.array_equal(before.tensors[k], after.tensors[k])
                       for k in before.tensors if k.split(".")[0] == layer and k in after.tensors
                       and before.tensors[k].shape == after.tensors[k].shape) for layer in layers}


@pytest.mark.parametrize("strategy, extra, trained", [
    ("head", [], {"fc8"}),
    ("two-phase", ["--head-epochs", "1", "--unfreeze", "2"], {"fc7", "fc8"}),
])
def test_finetune_freezes_what_it_should(tmp_path, pretrained, four_class_folder, strategy, extra, trained):
    from alexnet_lab.weights import load_weights

    run = tmp_path / "ft"
    result = run_cli("train", "--data", str(four_class_folder), "--weights", str(pretrained), "--strategy", strategy,
                     "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--augment", "none", *extra, "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = load_weights(pretrained), load_weights(run / "last.safetensors")
    assert after.num_classes == 4 and after.meta.preprocess == before.meta.preprocess
    changed = _changed(before, after)
    assert {layer for layer, moved in changed.items() if moved} == trained - {"fc8"}  # fc8 changed shape (10 -> 4)
    for layer in trained - {"fc8"}:
        assert changed[layer], f"{layer} should have trained"
    frozen_bn = [k for k in before.tensors if k.startswith("bn")]
    assert all(np.array_equal(before.tensors[k], after.tensors[k]) for k in frozen_bn), "frozen BatchNorm moved"
