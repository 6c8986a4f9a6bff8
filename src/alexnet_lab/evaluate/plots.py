"""PNG figures of a run: training curves, the confusion matrix, a grid of sample predictions.

matplotlib is imported inside the functions, so importing :mod:`alexnet_lab.evaluate` stays
numpy-only. Figures are drawn on matplotlib's Agg canvas directly (``Figure`` +
``FigureCanvasAgg``) rather than through ``pyplot``: that needs no display, never switches the
process-wide backend, and leaves no figure behind in pyplot's global registry. Every PNG is
written to a temporary file and renamed over the target, so a crash leaves no half image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.evaluate.metrics import EvalResult, is_finite_number

DPI = 100
ANNOTATE_MAX_CLASSES = 20  # above this the count labels overlap
TICK_LABEL_MAX_CLASSES = 60  # above this class names are unreadable; index ticks instead
CORRECT_COLOUR = "#1a7f37"
WRONG_COLOUR = "#cf222e"


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: Any, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)  # the temp name ends in .tmp: say PNG explicitly
    return target


def _series(rows: Sequence[Mapping[str, Any]], key: str, scale: float = 1.0) -> np.ndarray:
    return np.array([row[key] * scale if is_finite_number(row.get(key)) else np.nan for row in rows], dtype=float)


def _epochs(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    numbers = [row["epoch"] if is_finite_number(row.get("epoch")) else i + 1 for i, row in enumerate(rows)]
    return np.array(numbers, dtype=float)


def _phase_segments(rows: Sequence[Mapping[str, Any]], epochs: np.ndarray) -> list[tuple[str, float, float]]:
    """(phase, first epoch, last epoch) for each run of consecutive rows with the same phase."""
    segments: list[tuple[str, float, float]] = []
    for row, epoch in zip(rows, epochs):
        phase = str(row.get("phase", ""))
        if segments and segments[-1][0] == phase:
            segments[-1] = (phase, segments[-1][1], epoch)
        else:
            segments.append((phase, epoch, epoch))
    return segments


def _mark_phases(axes: Any, segments: list[tuple[str, float, float]], label: bool) -> None:
    for (_, _, end), (_, start, _) in zip(segments, segments[1:]):
        axes.axvline((end + start) / 2, color="grey", linestyle="--", linewidth=1)
    if label:
        for phase, start, end in segments:
            axes.text((start + end) / 2, 1.01, phase, transform=axes.get_xaxis_transform(),
                      ha="center", va="bottom", fontsize=8, color="dimgrey")


def _mark_best(axes: Any, epochs: np.ndarray, val_top1: np.ndarray) -> None:
    if np.isfinite(val_top1).any():
        i = int(np.nanargmax(val_top1))  # first of equal maxima, as RunSummary.best_epoch
        axes.plot(epochs[i], val_top1[i], "*", color="gold", markersize=14, markeredgecolor="black",
                  label=f"best val {val_top1[i]:.1f}%")
        axes.legend()


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = list(rows)
    if not rows:
        raise UserInputError("no epochs to plot; expected at least one row of metrics.jsonl.")
    if not all(isinstance(row, Mapping) for row in rows):
        raise UserInputError("expected every metrics row to be a JSON object like {'epoch': 1, 'train_loss': ...}.")
    return rows


def plot_curves(
    metrics_rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Plot loss and top-1 accuracy against epoch, train and validation, and save a PNG.

    Args:
        metrics_rows: one mapping per epoch (the rows of ``metrics.jsonl``); missing or null
            values leave a gap. When the rows have more than one ``phase`` (e.g. head then
            finetune) the phase boundaries are drawn as dashed lines and the phases named.
        path: where to write the PNG.
        title: optional figure title.

    Returns:
        ``path`` as a Path.
    """
    rows = _check_rows(metrics_rows)
    epochs = _epochs(rows)
    segments = _phase_segments(rows, epochs)
    figure = _new_figure(10, 4)
    panels = figure.subplots(1, 2)
    for axes, metric, scale, ylabel in ((panels[0], "loss", 1.0, "loss"), (panels[1], "top1", 100.0, "top-1 (%)")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = _series(rows, f"{split}_{metric}", scale)
            if np.isfinite(values).any():
                axes.plot(epochs, values, style, markersize=3, label=split)
        if len(segments) > 1:
            _mark_phases(axes, segments, label=True)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    _mark_best(panels[1], epochs, _series(rows, "val_top1", 100.0))
    if title:
        figure.suptitle(title)
    return _save_png(figure, path)


def _row_normalised(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1, keepdims=True)
    # A class with no images gets an all-zero row rather than 0/0 = NaN.
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)


def _annotate_counts(axes: Any, matrix: np.ndarray, normalised: np.ndarray) -> None:
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if normalised[row, col] > 0.5 else "black"
        axes.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)


def plot_confusion(result: EvalResult, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Draw the row-normalised confusion matrix as a heat map and save a PNG.

    Colour = fraction of the true class (row) predicted as each column. Class names label both
    axes up to 60 classes (indices beyond that); raw counts are written in the cells up to 20.

    Returns:
        ``path`` as a Path.
    """
    matrix = result.confusion_matrix()
    normalised = _row_normalised(matrix)
    count = result.num_classes
    side = min(14.0, max(5.0, 2.5 + 0.45 * count)) if count <= TICK_LABEL_MAX_CLASSES else 10.0
    figure = _new_figure(side + 1.2, side)
    axes = figure.subplots()
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, shrink=0.8, label="fraction of the true class")
    if count <= TICK_LABEL_MAX_CLASSES:
        ticks = np.arange(count)
        axes.set_xticks(ticks, labels=result.class_names, rotation=60, ha="right", fontsize=8)
        axes.set_yticks(ticks, labels=result.class_names, fontsize=8)
    if count <= ANNOTATE_MAX_CLASSES:
        _annotate_counts(axes, matrix, normalised)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title or f"top-1 {result.top1:.1%} on {result.num_images} images")
    return _save_png(figure, path)


def _check_image(image: Any, index: int) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise UserInputError(
            f"expected sample image {index} as an HxW or HxWx3 uint8 array; "
            f"received {array.dtype} of shape {array.shape}."
        )
    return array


def _short(name: str, limit: int = 16) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _check_samples(images: Sequence[Any], true: Sequence[int], pred: Sequence[int], probs: Sequence[float],
                   class_names: Sequence[str]) -> None:
    lengths = {len(images), len(true), len(pred), len(probs)}
    if len(lengths) != 1 or not len(images):
        raise UserInputError(
            f"expected the same non-zero number of images, true labels, predictions and probabilities; "
            f"received {len(images)}, {len(true)}, {len(pred)}, {len(probs)}."
        )
    for label in (*true, *pred):
        if not 0 <= int(label) < len(class_names):
            raise UserInputError(f"sample label {label} is outside the {len(class_names)} class names.")


def plot_samples(
    images: Sequence[Any],
    true: Sequence[int],
    pred: Sequence[int],
    probs: Sequence[float],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    columns: int | None = None,
) -> Path:
    """Draw sample predictions in a grid titled "true / pred (p)", green if right, red if wrong.

    Args:
        images: HxWx3 (or HxW grey) uint8 arrays, any sizes.
        true: true class index per image.
        pred: predicted class index per image.
        probs: probability of the predicted class per image.
        class_names: names for the indices.
        path: where to write the PNG.
        columns: grid width; default about the square root of the count, at most 8.

    Returns:
        ``path`` as a Path.
    """
    _check_samples(images, true, pred, probs, class_names)
    count = len(images)
    columns = max(1, min(columns or min(8, math.ceil(math.sqrt(count))), count))
    rows = math.ceil(count / columns)
    figure = _new_figure(2.0 * columns, 2.25 * rows)
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for i, axes in enumerate(grid):
        axes.axis("off")
        if i >= count:
            continue
        array = _check_image(images[i], i)
        axes.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=255)
        right = int(true[i]) == int(pred[i])
        label = f"{_short(class_names[int(true[i])])} / {_short(class_names[int(pred[i])])} ({float(probs[i]):.2f})"
        axes.set_title(label, color=CORRECT_COLOUR if right else WRONG_COLOUR, fontsize=8)
    return _save_png(figure, path)
