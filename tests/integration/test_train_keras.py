"""Keras training end to end, as users run it: run folder, kill -9 + resume, fine-tuning, models
that move between the frameworks, and the Keras loop on the PyTorch backend.

Every training runs in its own process: TensorFlow and PyTorch must not train in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tests.integration.training_checks import (
    FINETUNE_CASES,
    finetune_and_check,
    four_class_folder,
    kill_in_epoch_2_then_resume,
    metrics,
)

TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "20", "--batch-size", "32",
        "--lr", "0.05", "--augment", "cifar"]
KERAS = ["train", "--framework", "keras"]

# runs the CLI in-process, then proves the other framework was never imported
WITHOUT_DRIVER = """
import sys
from alexnet_lab.cli import main
forbidden, args = sys.argv[1], sys.argv[2:]
code = main(args)
assert forbidden not in sys.modules, f"the Keras training loop imported {forbidden}"
sys.exit(code)
"""


def _train_without(forbidden: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-c", WITHOUT_DRIVER, forbidden, *args], capture_output=True, text=True,
                          env=full_env, timeout=600)


def _evaluate(run: Path, framework: str) -> tuple[float, float]:
    """(top-1, loss) of the run's best model on held-out synthetic images."""
    result = run_cli("evaluate", str(run), "--data", "synthetic", "--framework", framework, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    return doc["top1"], doc["loss"]


def _same_in_both_frameworks(run: Path) -> None:
    (torch_top1, torch_loss), (keras_top1, keras_loss) = _evaluate(run, "torch"), _evaluate(run, "keras")
    assert abs(torch_top1 - keras_top1) <= 0.001, (torch_top1, keras_top1)  # 0.1 point
    assert abs(torch_loss - keras_loss) <= 1e-4 * max(1.0, torch_loss), (torch_loss, keras_loss)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory) -> Path:
    """A 3-epoch Keras run, trained in a process that must never import torch."""
    run = tmp_path_factory.mktemp("keras") / "run"
    result = _train_without("torch", *KERAS, *TINY, "--epochs", "3", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_run_folder_contents_and_cli_on_it(keras_run):
    run = keras_run
    for name in ("config.json", "split.json", "metrics.jsonl", "eval.json", "samples.json", "best.safetensors",
                 "last.safetensors", "checkpoints/last.keras-ckpt.npz", "checkpoints/best.keras-ckpt.npz",
                 "plots/curves.png", "plots/confusion.png", "plots/samples.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((run / "config.json").read_text())
    assert config["framework"] == "keras" and config["variant"] == "cifar"
    assert config["resolved"]["device"] == "cpu" and config["resolved"]["keras_backend"] == "tensorflow"
    assert config["resolved"]["precision"] in ("fp32", "bf16")
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    keys = {"train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "epoch_seconds", "images_per_second",
            "epoch", "phase"}
    assert all(set(row) == keys for row in rows) and all(np.isfinite(row["train_loss"]) for row in rows)
    evaluation = run_cli("evaluate", str(run), "--data", "synthetic", "--framework", "keras", "--json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    doc = json.loads(evaluation.stdout)
    assert {"top1", "top5", "loss", "num_images", "per_class", "confusion"} <= set(doc)
    assert len(doc["confusion"]) == 10 and doc["num_images"] == 1000
    again = run_cli(*KERAS, *TINY, "--epochs", "3", "--out", str(run))
    assert again.returncode != 0 and "--resume" in again.stderr


def test_kill_9_during_epoch_2_then_resume_exactly(tmp_path, keras_run):
    rows, resumed = kill_in_epoch_2_then_resume([*KERAS, *TINY], tmp_path / "run")
    assert "resuming at epoch 2 of 3" in resumed.stderr
    # the same numbers as the uninterrupted run: weights, optimizer, data order, augmentation and
    # dropout all continue where the checkpoint left them
    reference = metrics(keras_run)
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "lr"):
        assert np.allclose([r[key] for r in rows], [r[key] for r in reference], rtol=1e-4, atol=1e-6), key


@pytest.fixture(scope="module")
def pretrained(keras_run) -> Path:
    return keras_run / "best.safetensors"


@pytest.fixture(scope="module")
def four_classes(tmp_path_factory) -> Path:
    return four_class_folder(tmp_path_factory, per_class=20)


@pytest.mark.parametrize("strategy, extra, trained", FINETUNE_CASES)
def test_finetune_freezes_what_it_should(tmp_path, pretrained, four_classes, strategy, extra, trained):
    config = finetune_and_check(KERAS, tmp_path / "ft", pretrained, four_classes, strategy, extra, trained)
    assert config["resolved"]["reinitialised_layers"] == ["fc8"]


def test_keras_trained_run_evaluates_the_same_in_both_frameworks(keras_run):
    _same_in_both_frameworks(keras_run)


@pytest.mark.slow  # the default run keeps the Keras-trained run evaluated in both frameworks
def test_torch_trained_run_evaluates_the_same_in_keras(tmp_path):
    run = tmp_path / "torch-run"
    result = run_cli("train", "--framework", "torch", *TINY, "--epochs", "1", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    _same_in_both_frameworks(run)


def test_keras_model_trains_on_the_torch_backend(tmp_path):
    run = tmp_path / "run"
    result = _train_without("tensorflow", *KERAS, *TINY, "--epochs", "1", "--out", str(run),
                            env={"KERAS_BACKEND": "torch"})
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["keras_backend"] == "torch"
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [1] and np.isfinite(rows[0]["train_loss"])
    assert (run / "checkpoints" / "last.keras-ckpt.npz").is_file() and (run / "eval.json").is_file()


# Three optimizer steps of each loop's own step code from the same weights and batch (dropout 0).
TORCH_STEPS = """
import json, sys
import numpy as np, torch
import torch.nn.functional as F
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks.torch import build_model, from_canonical, to_canonical
from alexnet_lab.train.torch.trainer import build_optimizer
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.phases import plan_phases
folder = sys.argv[1]
torch.manual_seed(0)
model = build_model("cifar", 10, 0.0, input_size=32)
np.savez(f"{folder}/w0.npz", **to_canonical(model))
rng = np.random.default_rng(0)
x, y = rng.normal(size=(16, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 16)
np.savez(f"{folder}/batch.npz", x=x, y=y)
losses = {}
for name, values in json.loads(sys.argv[2]).items():
    config = RunConfig(variant="cifar", **values)
    model = from_canonical(build_model("cifar", 10, 0.0, input_size=32), dict(np.load(f"{folder}/w0.npz")))
    optimizer = build_optimizer(model, plan_phases(config, get_arch("cifar"), ())[0], config)
    model.train()
    losses[name] = []
    for _ in range(3):
        loss = F.cross_entropy(model(torch.from_numpy(x).permute(0, 3, 1, 2)), torch.from_numpy(y),
                               label_smoothing=config.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses[name].append(float(loss))
print(json.dumps(losses))
"""

KERAS_STEPS = """
import json, sys
import numpy as np
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks.keras import build_model, from_canonical
from alexnet_lab.train.keras.precision import LossScale
from alexnet_lab.train.keras.steps import PhaseStep
from alexnet_lab.train.keras.trainer import _set_trainable
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.phases import plan_phases
folder = sys.argv[1]
batch = np.load(f"{folder}/batch.npz")
losses = {}
for name, values in json.loads(sys.argv[2]).items():
    config = RunConfig(variant="cifar", **values)
    model = from_canonical(build_model("cifar", 10, 0.0, input_size=32), dict(np.load(f"{folder}/w0.npz")))
    phase = plan_phases(config, get_arch("cifar"), ())[0]
    _set_trainable(model, phase)
    step = PhaseStep(model, phase, config, LossScale(False))
    step.set_lr(1.0)
    losses[name] = [step.run(batch["x"], batch["y"].astype(np.int64))[0] for _ in range(3)]
print(json.dumps(losses))
"""

STEP_CONFIGS = {
    "sgd": {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4, "label_smoothing": 0.1, "grad_clip": 0.5},
    "adamw": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "label_smoothing": 0.1, "grad_clip": 1.0},
}


def test_keras_steps_follow_the_pytorch_steps(tmp_path):
    """SGD (Nesterov, coupled L2 on kernels, clipping, label smoothing) gives PyTorch's losses to
    float32 noise. AdamW agrees to 1%: Keras puts Adam's epsilon outside the bias correction, and
    the first Adam steps move by about lr x sign(g), so gradients that are float32 noise (conv1
    under BatchNorm) can step either way."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    outputs = []
    for script in (TORCH_STEPS, KERAS_STEPS):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path), json.dumps(STEP_CONFIGS)],
                                capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    torch_losses, keras_losses = outputs
    assert np.allclose(keras_losses["sgd"], torch_losses["sgd"], rtol=1e-4), (keras_losses, torch_losses)
    assert np.allclose(keras_losses["adamw"], torch_losses["adamw"], rtol=1e-2), (keras_losses, torch_losses)
    assert torch_losses["sgd"][2] < torch_losses["sgd"][0]  # the steps did train
