"""The three plots write valid PNG files, atomically, and reject bad input with UserInputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.evaluate import evaluate_logits, plot_confusion, plot_curves, plot_samples
from alexnet_lab.evaluate.plots import CORRECT_COLOUR, WRONG_COLOUR


def open_png(path: Path, min_size: tuple[int, int] = (300, 200)) -> np.ndarray:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_size[0] and image.height >= min_size[1]
        assert image.width <= 3000 and image.height <= 3000
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 5  # not a blank canvas
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    return pixels


def two_phase_rows() -> list[dict]:
    rows = []
    for epoch in range(1, 7):
        rows.append({
            "epoch": epoch, "phase": "head" if epoch <= 2 else "finetune",
            "train_loss": 2.0 / epoch, "train_top1": 0.3 + 0.1 * epoch,
            "val_loss": 2.2 / epoch, "val_top1": 0.25 + 0.1 * epoch - 0.02 * (epoch == 6), "val_top5": 0.9,
            "lr": 1e-3, "epoch_seconds": 12.5, "images_per_second": 400.0,
        })
    rows[3]["val_loss"] = None  # a gap must not break the plot
    return rows


def test_plot_curves_two_phases(tmp_path) -> None:
    path = plot_curves(two_phase_rows(), tmp_path / "plots" / "curves.png", title="run")
    assert path == tmp_path / "plots" / "curves.png"
    open_png(path, (800, 300))


def test_plot_curves_train_only_single_epoch(tmp_path) -> None:
    open_png(plot_curves([{"epoch": 1, "phase": "train", "train_loss": 1.0, "train_top1": 0.5}], tmp_path / "c.png"))


def test_plot_curves_rejects_empty_and_non_objects(tmp_path) -> None:
    with pytest.raises(UserInputError, match="no epochs"):
        plot_curves([], tmp_path / "c.png")
    with pytest.raises(UserInputError, match="JSON object"):
        plot_curves([1, 2], tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("num_classes", [4, 100])
def test_plot_confusion(tmp_path, num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    labels = rng.integers(0, num_classes - 1, size=400)  # the last class gets no image: an all-zero row
    logits = rng.normal(size=(400, num_classes))
    logits[np.arange(400), labels] += 2.0
    result = evaluate_logits(logits, labels, [f"class name {i}" for i in range(num_classes)])
    open_png(plot_confusion(result, tmp_path / "confusion.png"), (400, 400))


def test_plot_confusion_overwrites_atomically(tmp_path) -> None:
    target = tmp_path / "confusion.png"
    target.write_bytes(b"old")
    result = evaluate_logits(np.eye(3), np.arange(3), ["a", "b", "c"])
    open_png(plot_confusion(result, target), (300, 300))


def _near(pixels: np.ndarray, colour: str, tolerance: int = 40) -> bool:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(pixels.astype(int) - rgb).sum(axis=2) < tolerance).any())


def test_plot_samples_green_right_red_wrong(tmp_path) -> None:
    grey = np.full((40, 50), 128, dtype=np.uint8)
    rgb = np.zeros((64, 48, 3), dtype=np.uint8)
    rgb[::2] = 200
    single = np.full((30, 30, 1), 60, dtype=np.uint8)
    names = ["airplane", "automobile", "a very long class name indeed"]
    path = plot_samples([grey, rgb, single], [0, 1, 2], [0, 2, 2], [0.9, 0.51, 0.99], names, tmp_path / "s.png")
    pixels = open_png(path, (200, 150))
    assert _near(pixels, CORRECT_COLOUR) and _near(pixels, WRONG_COLOUR)


def test_plot_samples_only_right_has_no_red(tmp_path) -> None:
    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    pixels = open_png(plot_samples([image] * 5, [1] * 5, [1] * 5, [0.8] * 5, ["a", "b"], tmp_path / "s.png"),
                      (200, 150))
    assert _near(pixels, CORRECT_COLOUR) and not _near(pixels, WRONG_COLOUR)


@pytest.mark.parametrize(
    ("images", "true", "pred", "probs", "match"),
    [
        ([], [], [], [], "non-zero number"),
        ([np.zeros((8, 8, 3), np.uint8)], [0, 1], [0], [0.5], "same non-zero"),
        ([np.zeros((8, 8, 3), np.float32)], [0], [0], [0.5], "uint8"),
        ([np.zeros((8, 8, 3), np.uint8)], [0], [7], [0.5], "outside"),
    ],
)
def test_plot_samples_bad_input(tmp_path, images, true, pred, probs, match) -> None:
    with pytest.raises(UserInputError, match=match):
        plot_samples(images, true, pred, probs, ["a", "b"], tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()
