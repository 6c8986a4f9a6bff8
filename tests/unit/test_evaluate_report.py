"""load_run and write_report on realistic fake run folders (torch scratch vs keras two-phase)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.evaluate import evaluate_logits, load_run, write_eval_json, write_report

TORCH_CLASSES = ["cat", "dog", "owl"]  # owl: no validation image
KERAS_CLASSES = ["dog", "cat", "emu"]  # other order, and a class the torch run lacks


def _eval(folder: Path, names: list[str], labels: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), len(names)))
    logits[np.arange(len(labels)), labels] += 1.5
    write_eval_json(evaluate_logits(logits, labels, names), folder / "eval.json")


def _metrics(folder: Path, phases: list[str], seconds: float) -> None:
    lines = []
    for epoch, phase in enumerate(phases, 1):
        row = {"epoch": epoch, "phase": phase, "train_loss": 2.0 / epoch, "train_top1": 0.2 + 0.1 * epoch,
               "val_loss": 2.1 / epoch, "val_top1": [0.3, 0.5, 0.45, 0.6, 0.55][epoch - 1], "val_top5": 0.95,
               "lr": 0.001, "epoch_seconds": seconds, "images_per_second": 250.0}
        lines.append(json.dumps(row))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def make_torch_run(root: Path) -> Path:
    folder = root / "torch-scratch"
    folder.mkdir(parents=True)
    config = {"framework": "torch", "variant": "owt", "recipe": "cifar10", "strategy": "scratch", "epochs": 5,
              "data": "/data/cifar", "lr": 0.001}
    (folder / "config.json").write_text(json.dumps(config))
    _metrics(folder, ["train"] * 4, 30.0)  # 4 of 5 planned epochs finished
    _eval(folder, TORCH_CLASSES, np.array([0] * 6 + [1] * 4), seed=1)
    return folder


def make_keras_run(root: Path) -> Path:
    folder = root / "keras-two-phase"
    (folder / "images").mkdir(parents=True)
    config = {"framework": "keras", "variant": "original", "recipe": "finetune", "strategy": "two-phase",
              "epochs": 5, "params": 57_044_810}
    (folder / "config.json").write_text(json.dumps(config))
    _metrics(folder, ["head", "head", "finetune", "finetune", "finetune"], 45.5)
    _eval(folder, KERAS_CLASSES, np.array([0] * 5 + [1] * 5 + [2] * 3), seed=2)
    samples = []
    for i in range(6):
        Image.fromarray(np.full((48, 40, 3), 40 * i, dtype=np.uint8)).save(folder / "images" / f"{i}.png")
        samples.append({"path": f"images/{i}.png", "true": i % 3, "pred": (i * 2) % 3, "prob": 0.5 + i / 20})
    samples.append({"path": "images/gone.png", "true": 0, "pred": 0, "prob": 0.9})  # missing image: skipped
    (folder / "samples.json").write_text(json.dumps({"class_names": KERAS_CLASSES, "samples": samples}))
    return folder


@pytest.fixture()
def runs(tmp_path) -> list[Path]:
    return [make_torch_run(tmp_path / "runs"), make_keras_run(tmp_path / "runs")]


def test_load_run_summary(runs) -> None:
    torch_run, keras_run = load_run(runs[0]), load_run(runs[1])
    assert torch_run.name == "torch-scratch" and torch_run.setting("framework") == "torch"
    assert torch_run.epochs_done == 4 and torch_run.wall_seconds == 120.0
    assert torch_run.best_epoch == 4 and torch_run.params is None and torch_run.samples is None
    assert torch_run.plots == {}
    assert torch_run.time_to(0.5) == (2, 60.0) and torch_run.time_to(0.6) == (4, 120.0)
    assert torch_run.time_to(0.61) is None
    assert keras_run.params == 57_044_810 and keras_run.wall_seconds == pytest.approx(5 * 45.5)
    assert keras_run.samples is not None and len(keras_run.samples.samples) == 7
    assert keras_run.eval.class_names == tuple(KERAS_CLASSES)


def _table_row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row for {first_cell!r}")


def test_write_report_markdown_and_html(runs, tmp_path) -> None:
    md_path, html_path = write_report(runs, tmp_path / "out" / "compare.md", target_top1=0.6)
    assert (md_path.name, html_path.name) == ("compare.md", "compare.html")
    markdown = md_path.read_text()
    for heading in ("Summary", "Per-class accuracy", "Training curves", "Confusion matrices", "Sample predictions"):
        assert f"## {heading}" in markdown
    links = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", markdown)
    for run in ("torch-scratch", "keras-two-phase"):
        for plot in ("curves", "confusion"):
            assert any(caption == run and link.endswith(f"{plot}.png") for caption, link in links)
    assert [caption for caption, link in links if link.endswith("samples.png")] == ["keras-two-phase"]
    assert all((md_path.parent / link).is_file() for _, link in links)
    # Missing plots were drawn into the run folders.
    assert (runs[0] / "plots" / "curves.png").is_file() and not (runs[0] / "plots" / "samples.png").exists()
    assert (runs[1] / "plots" / "samples.png").is_file()

    torch_row = _table_row(markdown, "torch-scratch")
    assert torch_row[1:6] == ["torch", "owt", "scratch / cifar10", "4/5", "4"]
    assert "to 60% val top-1" in markdown
    assert torch_row[-3:] == ["epoch 4, 0:02:00", "0:02:00", "—"]
    keras_row = _table_row(markdown, "keras-two-phase")
    assert keras_row[-3:] == ["epoch 4, 0:03:02", "0:03:48", "57,044,810"]

    torch_eval, keras_eval = load_run(runs[0]).eval, load_run(runs[1]).eval
    cat = _table_row(markdown, "cat")  # matched by name although the label index differs
    assert cat == ["cat", f"{100 * torch_eval.per_class['cat']:.2f}% (6)", f"{100 * keras_eval.per_class['cat']:.2f}% (5)"]
    assert _table_row(markdown, "owl") == ["owl", "n/a (0)", "—"]
    assert _table_row(markdown, "emu")[1] == "—"
    assert [row[0] for row in (_table_row(markdown, n) for n in ("cat", "dog", "owl", "emu"))] == ["cat", "dog", "owl", "emu"]

    page = html_path.read_text()
    assert "<table" in page and page.count("data:image/png;base64,") == 5
    assert re.findall(r'src="(?!data:)', page) == [] and "<style>" in page
    assert "keras-two-phase" in page and "57,044,810" in page


def test_report_into_folder_without_samples(tmp_path) -> None:
    run = make_torch_run(tmp_path)
    md_path, html_path = write_report([run], tmp_path / "report")
    assert md_path == tmp_path / "report" / "report.md" and html_path.is_file()
    assert "## Sample predictions" not in md_path.read_text()


def test_a_target_that_is_not_a_fraction_is_refused_before_anything_is_written(runs, tmp_path) -> None:
    for target in (80.0, 0.0, float("nan")):
        with pytest.raises(UserInputError, match="--target-top1 takes a fraction"):
            write_report(runs, tmp_path / "r.md", target_top1=target)
    assert not (tmp_path / "r.md").exists()


def test_missing_required_file_names_run_and_file(runs, tmp_path) -> None:
    (runs[1] / "eval.json").unlink()
    with pytest.raises(UserInputError, match=r"run 'keras-two-phase': missing eval\.json") as info:
        write_report(runs, tmp_path / "r.md")
    assert "\n" not in str(info.value)
    with pytest.raises(UserInputError, match="no such folder"):
        load_run(tmp_path / "nowhere")
    with pytest.raises(UserInputError, match="at least one run"):
        write_report([], tmp_path / "r.md")


def test_metrics_jsonl_truncated_last_line_is_skipped_but_corrupt_middle_is_not(runs) -> None:
    path = runs[0] / "metrics.jsonl"
    path.write_text(path.read_text() + '{"epoch": 5, "train_lo')
    assert load_run(runs[0]).epochs_done == 4
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", *lines[1:4]]) + "\n")
    with pytest.raises(UserInputError, match="line 2 of metrics.jsonl"):
        load_run(runs[0])


def test_unwritable_plots_folder_falls_back_to_report_assets(runs, tmp_path) -> None:
    (runs[0] / "plots").write_text("a file where the plots folder should be")
    md_path, _ = write_report(runs, tmp_path / "r.md")
    assert (tmp_path / "r_assets" / "01-torch-scratch" / "curves.png").is_file()
    assert "01-torch-scratch-curves.png" in md_path.read_text()


def test_same_folder_names_are_disambiguated(tmp_path) -> None:
    first, second = make_torch_run(tmp_path / "a"), make_torch_run(tmp_path / "b")
    md_path, _ = write_report([first, second], tmp_path / "r.md")
    markdown = md_path.read_text()
    assert _table_row(markdown, "a/torch-scratch") and _table_row(markdown, "b/torch-scratch")


def test_malformed_samples_json(runs, tmp_path) -> None:
    (runs[1] / "samples.json").write_text(json.dumps({"samples": []}))
    with pytest.raises(UserInputError, match="samples.json is malformed"):
        load_run(runs[1])
