"""Checks shared by the PyTorch and Keras training tests (same contract, two loops)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import run_cli

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
    from alexnet_lab.weights import load_weights

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
