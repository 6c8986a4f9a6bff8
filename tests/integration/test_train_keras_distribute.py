"""Keras training under tf.distribute end to end (marked slow): kill -9 + resume under
MirroredStrategy on 2 logical CPUs, and a 2-worker MultiWorkerMirroredStrategy run on localhost.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tests.integration.training_checks import kill_in_epoch_2_then_resume, metrics

pytestmark = pytest.mark.slow

LOGICAL_CPUS = {"ALEXNET_LAB_KERAS_LOGICAL_CPUS": "2"}
# 30 training images in batches of 29 and 1: uneven shares, and one replica with no image
TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "4", "--batch-size", "29",
        "--lr", "0.05", "--augment", "cifar"]
KEYS = ("train_loss", "train_top1", "val_loss", "val_top1", "lr")


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("mirrored") / "run"
    result = run_cli("train", "--framework", "keras", "--distribute", "mirrored", *TINY, "--epochs", "3",
                     "--out", str(run), env=LOGICAL_CPUS)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def _same_metrics(rows: list[dict], reference: list[dict]) -> None:
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in reference]
    for key in KEYS:
        assert np.allclose([r[key] for r in rows], [r[key] for r in reference], rtol=1e-4, atol=1e-6), key


def test_mirrored_kill_9_then_resume_continues_exactly(tmp_path, monkeypatch, mirrored_run):
    """Weights, optimizer, data order and the per-replica dropout seeds continue from the checkpoint."""
    monkeypatch.setenv("ALEXNET_LAB_KERAS_LOGICAL_CPUS", "2")
    rows, resumed = kill_in_epoch_2_then_resume(["train", "--framework", "keras", "--distribute", "mirrored", *TINY],
                                                tmp_path / "run")
    assert "resuming at epoch 2 of 3" in resumed.stderr
    _same_metrics(rows, metrics(mirrored_run))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> list[tuple[Path, subprocess.CompletedProcess]]:
    """Two worker processes on this machine (one CPU replica each), each with its own --out."""
    folder = tmp_path_factory.mktemp("workers")
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        args = [sys.executable, "-m", "alexnet_lab", "train", "--framework", "keras", "--distribute", "multi-worker",
                *TINY, "--epochs", "3", "--out", str(folder / f"worker{index}")]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for index, proc in enumerate(procs):
        stdout, stderr = proc.communicate(timeout=900)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        results.append((folder / f"worker{index}", done))
    return results


def test_multi_worker_chief_writes_the_run_and_trains_like_mirrored(two_workers, mirrored_run):
    """2 workers x 1 replica take the same steps as 1 machine x 2 replicas; only the chief's loop
    writes checkpoints, metrics and models."""
    (chief, chief_result), (other, _) = two_workers
    assert chief_result.returncode == 0, chief_result.stderr[-3000:]
    config = json.loads((chief / "config.json").read_text())
    assert config["resolved"]["distribute"] | {"devices": None} == {
        "strategy": "multi-worker", "replicas": 2, "workers": 2, "devices": None, "task_type": "worker",
        "task_index": 0, "chief": True}
    for name in ("checkpoints/last.keras-ckpt.npz", "best.safetensors", "last.safetensors", "eval.json"):
        assert (chief / name).is_file(), name
    _same_metrics(metrics(chief), metrics(mirrored_run))
    assert not list(other.glob("checkpoints/*.npz")) and not (other / "metrics.jsonl").exists()
    assert not list(other.glob("*.safetensors"))


def test_multi_worker_other_worker_exits_cleanly(two_workers):
    (_, _), (_, other_result) = two_workers
    assert other_result.returncode == 0, other_result.stderr[-3000:]
