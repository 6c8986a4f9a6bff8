"""`alexnet report` across seeds: runs differing only in the seed are grouped, with mean ± sample
standard deviation (n) of validation top-1, held-out top-1, epochs and wall time."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.evaluate import evaluate_logits, load_run, write_eval_json, write_report
from alexnet_lab.evaluate.report_seeds import HELD_OUT_NAME, group_figures, seed_groups, seed_table

NAMES = ["cat", "dog"]


def make_run(root: Path, name: str, seed: int, correct: int, seconds: float, held_out: float | None = None,
             **config) -> Path:
    """A run folder: config.json, 2 epochs in metrics.jsonl, eval.json with `correct` of 10 right."""
    folder = root / name
    folder.mkdir(parents=True)
    doc = {"framework": "torch", "variant": "cifar", "recipe": "cifar10-fast", "epochs": 2, "lr": 0.05, "seed": seed,
           "out": str(folder), "resume": False, "resolved": {"device": f"cpu{seed}"}, **config}
    (folder / "config.json").write_text(json.dumps(doc))
    rows = [{"epoch": e, "phase": "train", "train_loss": 1.0, "train_top1": 0.5, "val_loss": 1.0, "val_top1": 0.5,
             "val_top5": 1.0, "lr": 0.01, "epoch_seconds": seconds, "images_per_second": 100.0} for e in (1, 2)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = np.array([0] * 5 + [1] * 5)
    logits = np.zeros((10, 2))
    logits[np.arange(10), np.where(np.arange(10) < correct, labels, 1 - labels)] = 1.0
    write_eval_json(evaluate_logits(logits, labels, NAMES), folder / "eval.json")
    if held_out is not None:
        (folder / HELD_OUT_NAME).write_text(json.dumps({"top1": held_out, "num_images": 1000}))
    return folder


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return [make_run(tmp_path, "s0", 0, 8, 10.0, 0.81), make_run(tmp_path, "s1", 1, 7, 12.0, 0.80),
            make_run(tmp_path, "s2", 2, 9, 14.0),  # not evaluated on the held-out split
            make_run(tmp_path, "keras", 0, 6, 30.0, framework="keras")]


def test_runs_differing_only_in_the_seed_are_one_group(runs):
    summaries = [load_run(r) for r in runs]
    groups = seed_groups(summaries)
    assert [[r.name for r in g] for g in groups] == [["s0", "s1", "s2"], ["keras"]]
    figures = group_figures(groups[0])
    assert figures["val_top1"]["mean"] == pytest.approx(0.8)
    assert figures["val_top1"]["std"] == pytest.approx(statistics.stdev([0.8, 0.7, 0.9]))
    assert figures["held_out_top1"] == {"mean": pytest.approx(0.805), "std": pytest.approx(0.00707107), "n": 2}
    assert figures["epochs"] == {"mean": 2.0, "std": 0.0, "n": 3}
    assert figures["wall_seconds"]["mean"] == pytest.approx(24.0)  # 2 epochs of 10, 12, 14 s
    assert group_figures(groups[1])["val_top1"]["std"] is None


def test_the_table_and_the_report_show_mean_std_and_n(runs, tmp_path):
    rows = seed_table([load_run(r) for r in runs]).rows
    assert rows[0][:4] == ("s0, s1, s2", "torch / cifar / cifar10-fast", "0, 1, 2", "80.00 ± 10.00 (n=3)")
    assert rows[0][4] == "80.50 ± 0.71 (n=2)" and rows[0][5] == "2.0 ± 0.0 (n=3)" and rows[0][6] == "24 s ± 4 s (n=3)"
    assert rows[1][3] == "60.00 (n=1)" and rows[1][4] == "—"
    md, _ = write_report(runs, tmp_path / "report")
    text = md.read_text()
    assert "## Across seeds" in text and "80.00 ± 10.00 (n=3)" in text


def test_no_seed_section_without_repeated_experiments(runs, tmp_path):
    md, _ = write_report(runs[2:], tmp_path / "report")
    assert "Across seeds" not in md.read_text()


def test_the_report_command_prints_each_seed_group(runs, tmp_path, capsys):
    from alexnet_lab.cli import main

    assert main(["report", *map(str, runs), "--out", str(tmp_path / "report")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("across seeds")]
    assert lines == ["across seeds 0, 1, 2 (torch / cifar / cifar10-fast): val top-1 (%) 80.00 ± 10.00 (n=3), "
                     "held-out top-1 (%) 80.50 ± 0.71 (n=2), epochs 2.0 ± 0.0 (n=3), wall time 24 s ± 4 s (n=3)"]


def test_a_single_crop_column_appears_when_runs_have_their_one_crop_figures(runs):
    from alexnet_lab.evaluate.report_seeds import ONE_CROP_NAME

    for folder, top1 in zip(runs[:2], (0.79, 0.78)):
        (folder / ONE_CROP_NAME).write_text(json.dumps({"top1": top1, "num_images": 1000}))
    summaries = [load_run(r) for r in runs]
    table = seed_table(summaries)
    assert table.headers[5] == "held-out top-1, 1 crop (%)"
    assert table.rows[0][4:6] == ("80.50 ± 0.71 (n=2)", "78.50 ± 0.71 (n=2)") and table.rows[1][5] == "—"
    assert group_figures(seed_groups(summaries)[0])["held_out_top1_1crop"]["n"] == 2
