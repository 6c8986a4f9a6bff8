"""PyTorch training end to end, as users run it: run folder, kill -9 + resume, fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.training_checks import (
    FINETUNE_CASES,
    finetune_and_check,
    four_class_folder,
    kill_in_epoch_2_then_resume,
    metrics,
)

TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "40", "--batch-size", "32", "--precision", "fp32",
        "--lr", "0.05", "--augment", "cifar"]


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
    assert [row["epoch"] for row in metrics(run)] == [1, 2]
    evaluation = run_cli("evaluate", str(run), "--data", "synthetic", "--json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    doc = json.loads(evaluation.stdout)
    assert {"top1", "top5", "loss", "num_images", "per_class", "confusion"} <= set(doc)
    assert len(doc["confusion"]) == 10 and doc["num_images"] == 1000
    again = run_cli("train", *TINY, "--epochs", "2", "--out", str(run))
    assert again.returncode != 0 and "--resume" in again.stderr


@pytest.mark.slow  # the default run keeps test_kill_between_last_and_best_resumes_to_the_uninterrupted_result
def test_kill_9_during_epoch_2_then_resume(tmp_path):
    kill_in_epoch_2_then_resume(["train", *TINY, "--synthetic-per-class", "80"], tmp_path / "run")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pre") / "run"
    result = run_cli("train", *TINY, "--epochs", "1", "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run / "best.safetensors"


@pytest.fixture(scope="module")
def four_classes(tmp_path_factory) -> Path:
    return four_class_folder(tmp_path_factory, per_class=30)


@pytest.mark.parametrize("strategy, extra, trained", FINETUNE_CASES)
def test_finetune_freezes_what_it_should(tmp_path, pretrained, four_classes, strategy, extra, trained):
    finetune_and_check(["train"], tmp_path / "ft", pretrained, four_classes, strategy, extra, trained)


@pytest.mark.slow
def test_compiled_training_follows_eager_training(tmp_path):
    """`--compile on` (torch.compile) trains like eager PyTorch from the same seed with --deterministic
    (which makes compiled dropout draw torch's masks): per-epoch losses within 2% (one step agrees to
    1e-5, tests/unit/test_devices.py; 24 steps at lr 0.05 spread float rounding to under 0.6%; without
    --deterministic, inductor's own dropout masks moved epoch 1 by 1.2%), and config.json records
    what was used."""
    runs = {}
    for setting in ("on", "off"):
        run = tmp_path / setting
        result = run_cli("train", *TINY, "--epochs", "2", "--deterministic", "--compile", setting, "--out", str(run))
        assert result.returncode == 0, result.stderr[-3000:]
        config = json.loads((run / "config.json").read_text())
        assert config["compile"] == setting and config["resolved"]["compile"] is (setting == "on")
        runs[setting] = metrics(run)
    for compiled, eager in zip(runs["on"], runs["off"]):
        for key in ("train_loss", "val_loss"):
            assert compiled[key] == pytest.approx(eager[key], rel=2e-2), (compiled["epoch"], key)
