"""PyTorch DistributedDataParallel through torchrun: 2 gloo processes on this machine's CPU."""

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
from tests.integration.training_checks import metrics

# one optimizer step per epoch (batch = the whole 72-image training split), no dropout, no
# augmentation, no BatchNorm (owt): two processes on 36 images each must make the same update.
# fp32 pinned: --precision auto is bf16 on CPUs with AVX512-BF16 / AMX, whose rounding is far
# above the float32 tolerance this comparison holds the two runs to
EXACT = ["--data", "synthetic", "--variant", "owt", "--input-size", "64", "--synthetic-per-class", "8",
         "--batch-size", "72", "--lr", "0.01", "--schedule", "constant", "--dropout", "0", "--augment", "none",
         "--epochs", "2", "--precision", "fp32"]
TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "40", "--batch-size", "32",
        "--lr", "0.05", "--augment", "cifar"]


def torchrun_args(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "alexnet_lab", *args]


def torchrun(nproc: int, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(torchrun_args(nproc, *args), env=env, capture_output=True, text=True, timeout=timeout)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc); torchrun starts its workers in their own sessions."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def run_files(run: Path) -> list[str]:
    """The run folder's files (event files by folder only: their names hold a time and a pid)."""
    return sorted(p.parent.name if p.name.startswith("events.out") else str(p.relative_to(run))
                  for p in run.rglob("*") if p.is_file())


def test_two_processes_make_the_one_process_update(tmp_path):
    from alexnet_lab.weights.files import load_weights

    single = run_cli("train", *EXACT, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr[-3000:]
    double = torchrun(2, "train", *EXACT, "--out", str(tmp_path / "two"))
    assert double.returncode == 0, double.stderr[-3000:]
    # one run folder written once: the same files as a single-process run (one event file)
    assert run_files(tmp_path / "two") == run_files(tmp_path / "one")
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["best.pt", "last.pt", "manifest.json"]
    assert double.stdout.count("run folder:") == 1
    resolved = json.loads((tmp_path / "two" / "config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2 and resolved["dist_backend"] == "gloo"
    one, two = (load_weights(tmp_path / name / "last.safetensors") for name in ("one", "two"))
    for key, value in one.tensors.items():  # float32 rounding: the 72 gradients are summed in another order
        scale = float(np.abs(value).max())
        np.testing.assert_allclose(two.tensors[key], value, rtol=0, atol=1e-5 * scale + 1e-6, err_msg=key)
    rows_one, rows_two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    for a, b in zip(rows_one, rows_two, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_top1"] == b["val_top1"]
    evals = [json.loads((tmp_path / name / "eval.json").read_text()) for name in ("one", "two")]
    assert evals[0]["top1"] == evals[1]["top1"]


@pytest.mark.slow
def test_resume_a_two_process_run_with_one(tmp_path):
    """Kill -9 a 2-process run inside epoch 2; resume it as a single process."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(torchrun_args(2, "train", *TINY, "--epochs", "3", "--out", str(run)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(metrics(run)) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "training ended before it could be killed"
    for pid in process_tree(proc.pid):  # the launcher and both workers, as a power cut would
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    assert [row["epoch"] for row in metrics(run)] == [1]
    resumed = run_cli("train", "--resume", "--out", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2 of 3" in resumed.stderr
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[-1]["lr"] < rows[0]["lr"]  # the schedule went on from epoch 2, not from the start
    assert json.loads((run / "config.json").read_text())["resolved"]["world_size"] == 1
    assert (run / "eval.json").is_file()


def test_batch_must_split_over_the_processes(tmp_path):
    result = torchrun(2, "train", *TINY, "--batch-size", "33", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "--batch-size 33 does not split evenly over 2 processes" in result.stderr


def test_torchrun_refuses_keras(tmp_path):
    """What each process started by torchrun sees (no process group is formed before the check)."""
    result = run_cli("train", *TINY, "--framework", "keras", "--epochs", "1", "--out", str(tmp_path / "run"),
                     env={"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert result.returncode != 0
    assert "torchrun starts PyTorch training only" in result.stderr


@pytest.mark.slow
def test_two_processes_reach_the_one_process_accuracy(tmp_path):
    """The demo recipe (synthetic shapes, augmentation, dropout, BatchNorm), 1 vs 2 processes."""
    recipe = ["--recipe", "synthetic-demo"]
    single = run_cli("train", *recipe, "--out", str(tmp_path / "one"), timeout=1800)
    assert single.returncode == 0, single.stderr[-3000:]
    double = torchrun(2, "train", *recipe, "--out", str(tmp_path / "two"), timeout=1800)
    assert double.returncode == 0, double.stderr[-3000:]
    top1 = [json.loads((tmp_path / name / "eval.json").read_text())["top1"] for name in ("one", "two")]
    assert min(top1) > 0.6, top1
    assert abs(top1[0] - top1[1]) <= 0.05, top1  # 250 validation images: 5 points is about 2 standard errors
