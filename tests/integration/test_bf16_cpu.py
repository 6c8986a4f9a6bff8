"""bf16 training on the CPU, on whichever kind of CPU runs the suite.

On CPUs with AVX512-BF16 / AMX, `--precision auto` trains in bf16; elsewhere it is emulated (about
4x slower than fp32), so these runs are tiny. ALEXNET_LAB_CPU_FLAGS makes a CPU without native
bf16 take the bf16 CPU's choices (and the other way round), so the code paths of both kinds run
in every CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core import hardware
from tests.conftest import run_cli
from tests.integration.training_checks import kill_in_epoch_2_then_resume, metrics

TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "40", "--batch-size", "32",
        "--lr", "0.02", "--dropout", "0.2", "--augment", "none"]
BF16_CPU = "avx512f avx512_bf16 amx_bf16"
# bf16 against fp32 on the same seed, data and schedule: the validation top-1 after 3 epochs (40
# images, so one image is 2.5 points) may differ by at most this much. Measured on a 2-core AMX
# Xeon: fp32 60.0%, bf16 62.5%; training losses 1.547 and 1.527.
ACCURACY_MARGIN = 0.10


def _float32_everywhere(run: Path) -> None:
    """Master weights, optimizer state and the exported weights stay float32 whatever the training
    precision: bf16 lives only inside autocast."""
    import torch
    from safetensors.numpy import load_file

    for name in ("best.safetensors", "last.safetensors"):
        assert {t.dtype for t in load_file(str(run / name)).values()} == {np.dtype(np.float32)}, name
    checkpoint = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    floats = [t for t in checkpoint["model"].values() if t.is_floating_point()]
    assert floats and {t.dtype for t in floats} == {torch.float32}
    states = [t for s in checkpoint["optimizer"]["state"].values() for t in s.values()
              if isinstance(t, torch.Tensor) and t.is_floating_point()]
    assert states and {t.dtype for t in states} == {torch.float32}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """The same 3-epoch run in fp32 and in bf16 (pinned, so the suite means the same on every CPU)."""
    runs = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path_factory.mktemp(precision) / "run"
        result = run_cli("train", *TINY, "--epochs", "3", "--precision", precision, "--out", str(run))
        assert result.returncode == 0, result.stderr[-3000:]
        runs[precision] = run
    return runs


@pytest.mark.slow  # two 3-epoch runs; bf16 is emulated, 4x slower, on CPUs without it
def test_bf16_training_reaches_fp32_accuracy(trained):
    fp32, bf16 = (metrics(trained[p])[-1] for p in ("fp32", "bf16"))
    assert json.loads((trained["bf16"] / "config.json").read_text())["resolved"]["precision"] == "bf16"
    assert fp32["val_top1"] >= 0.3, "the fp32 run did not learn: the comparison would mean nothing"
    assert abs(bf16["val_top1"] - fp32["val_top1"]) <= ACCURACY_MARGIN, (bf16, fp32)
    assert abs(bf16["train_loss"] - fp32["train_loss"]) <= 0.15 * fp32["train_loss"], (bf16, fp32)


@pytest.mark.slow  # two 3-epoch runs; bf16 is emulated, 4x slower, on CPUs without it
def test_bf16_run_keeps_float32_weights_and_state(trained):
    _float32_everywhere(trained["bf16"])


def test_simulated_bf16_cpu_trains_in_bf16_and_resumes(tmp_path, monkeypatch):
    """What a CPU with AVX512-BF16 / AMX runs by default: auto -> bf16, through kill -9 and resume."""
    monkeypatch.setenv(hardware.FLAGS_ENV, BF16_CPU)
    run = tmp_path / "run"
    rows, _ = kill_in_epoch_2_then_resume(["train", *TINY, "--synthetic-per-class", "60"], run)
    config = json.loads((run / "config.json").read_text())
    assert config["precision"] == "auto" and config["resolved"]["precision"] == "bf16"
    assert rows[-1]["val_top1"] > 0.1  # above chance after 3 epochs
    _float32_everywhere(run)


def test_simulated_fp32_cpu_trains_in_fp32(tmp_path, monkeypatch):
    """What a CPU without native bf16 runs by default: auto -> fp32 (on any machine)."""
    monkeypatch.setenv(hardware.FLAGS_ENV, "avx2 fma")
    run = tmp_path / "run"
    result = run_cli("train", *TINY, "--synthetic-per-class", "10", "--epochs", "1", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["resolved"]["precision"] == "fp32"


def test_simulated_bf16_cpu_keras_trains_in_mixed_bf16(tmp_path, monkeypatch):
    monkeypatch.setenv(hardware.FLAGS_ENV, BF16_CPU)
    run = tmp_path / "run"
    result = run_cli("train", *TINY, "--framework", "keras", "--synthetic-per-class", "10", "--epochs", "1",
                     "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["resolved"]["precision"] == "bf16"
    from safetensors.numpy import load_file

    assert {t.dtype for t in load_file(str(run / "last.safetensors")).values()} == {np.dtype(np.float32)}
    checkpoint = np.load(run / "checkpoints" / "last.keras-ckpt.npz", allow_pickle=False)
    floats = [checkpoint[k] for k in checkpoint.files if checkpoint[k].dtype.kind == "f"]
    assert floats and {a.dtype for a in floats} == {np.dtype(np.float32)}
