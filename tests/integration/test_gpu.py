"""Checks that need an accelerator (CUDA or Apple MPS); skipped on CPU-only machines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import run_cli

ACCELERATOR = "cuda" if torch.cuda.is_available() else (
    "mps" if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available() else None)
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(ACCELERATOR is None, reason="no CUDA or MPS device here")]


def test_auto_picks_the_accelerator():
    from alexnet_lab.frameworks.torch.device import resolve_device, resolve_precision

    device = resolve_device("auto")
    assert device.type == ACCELERATOR
    if ACCELERATOR == "cuda":
        assert resolve_precision("auto", device).name in ("bf16", "fp16")


def test_accelerator_logits_match_cpu():
    from alexnet_lab.frameworks import torch as tb

    torch.manual_seed(0)
    model = tb.build_model("owt").eval()
    x = np.random.default_rng(0).standard_normal((4, 224, 224, 3), dtype=np.float32)
    cpu = tb.predict_logits(model, x)
    gpu = tb.predict_logits(tb.to_device(model, ACCELERATOR), x)
    assert np.abs(cpu - gpu).max() <= 1e-3 * max(1.0, np.abs(cpu).max())


def test_train_on_accelerator_then_evaluate_on_cpu(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "40", "--epochs", "2",
                     "--batch-size", "32", "--device", ACCELERATOR, "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["device"].startswith(ACCELERATOR)
    evaluation = run_cli("evaluate", str(run), "--data", "synthetic", "--device", "cpu", "--json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    assert json.loads(evaluation.stdout)["num_images"] == 1000
