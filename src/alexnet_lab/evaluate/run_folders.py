"""Reading a training run folder into a :class:`RunSummary`, and drawing any plots it lacks.

The run folder contract (the torch and keras training loops write it)::

    RUN/config.json       resolved run config (framework, variant, recipe, strategy, epochs, ...)
    RUN/metrics.jsonl     one JSON object per finished epoch
    RUN/eval.json         evaluation of the best model on the validation split
    RUN/samples.json      optional: {"class_names": [...], "samples": [{"path", "true", "pred", "prob"}]}
    RUN/plots/            optional: curves.png, confusion.png, samples.png
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_lab.core.errors import AlexnetLabError, UserInputError
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.evaluate.metrics import EvalResult, is_finite_number, read_eval_json
from alexnet_lab.evaluate.plots import plot_confusion, plot_curves, plot_samples

logger = logging.getLogger(__name__)

REQUIRED_FILES = RunFolder.REQUIRED  # what makes a folder a finished run
PLOT_NAMES = ("curves", "confusion", "samples")
PARAM_KEYS = ("params", "num_params", "parameters", "param_count", "total_params")  # first found wins
THUMBNAIL_SIZE = 160  # sample images are shrunk to this many pixels on the long side


@dataclass(frozen=True)
class SamplePrediction:
    """One sample prediction: image path, true and predicted class index, predicted probability."""

    path: str
    true: int
    pred: int
    prob: float


@dataclass(frozen=True)
class SampleSet:
    """The contents of ``samples.json``."""

    class_names: tuple[str, ...]
    samples: tuple[SamplePrediction, ...]


@dataclass(frozen=True)
class RunSummary:
    """Everything a report needs about one training run.

    Attributes:
        name: display name (the folder name, made unique by :func:`write_report`).
        path: the run folder.
        config: the resolved run config (``config.json``).
        metrics: one mapping per finished epoch (``metrics.jsonl``).
        eval: the best model's validation metrics (``eval.json``).
        samples: sample predictions, or None when the run has no ``samples.json``.
        plots: plot name ('curves', 'confusion', 'samples') -> PNG path, for those that exist.
    """

    name: str
    path: Path
    config: Mapping[str, Any]
    metrics: tuple[Mapping[str, Any], ...]
    eval: EvalResult
    samples: SampleSet | None = None
    plots: Mapping[str, Path] = field(default_factory=dict)

    def setting(self, key: str, default: str = "—") -> str:
        """A config value as text, or ``default`` when absent."""
        value = self.config.get(key)
        return default if value is None else str(value)

    @property
    def epochs_done(self) -> int:
        """Number of finished epochs in ``metrics.jsonl``."""
        return len(self.metrics)

    @property
    def wall_seconds(self) -> float:
        """Training time: the sum of ``epoch_seconds`` over finished epochs."""
        return float(sum(row["epoch_seconds"] for row in self.metrics if is_finite_number(row.get("epoch_seconds"))))

    @property
    def params(self) -> int | None:
        """Parameter count from the config (keys: params, num_params, ...), or None."""
        for key in PARAM_KEYS:
            if is_finite_number(self.config.get(key)):
                return int(self.config[key])
        return None

    def time_to(self, top1: float) -> tuple[int, float] | None:
        """(epoch, training seconds up to and including it) of the first epoch whose ``val_top1``
        reaches `top1`, or None when none does."""
        seconds = 0.0
        for index, row in enumerate(self.metrics):
            if is_finite_number(row.get("epoch_seconds")):
                seconds += float(row["epoch_seconds"])
            if is_finite_number(row.get("val_top1")) and row["val_top1"] >= top1:
                epoch = row.get("epoch")
                return (int(epoch) if is_finite_number(epoch) else index + 1), seconds
        return None

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the highest ``val_top1`` (first one on ties), or None without any."""
        scored = [(row["val_top1"], -i) for i, row in enumerate(self.metrics) if is_finite_number(row.get("val_top1"))]
        if not scored:
            return None
        index = -max(scored)[1]
        epoch = self.metrics[index].get("epoch")
        return int(epoch) if is_finite_number(epoch) else index + 1


def _load_json(path: Path, run: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"run '{run}': cannot read {path.name} as JSON ({exc}).") from None


def read_metrics_jsonl(path: str | os.PathLike[str], run: str = "") -> tuple[dict[str, Any], ...]:
    """Read ``metrics.jsonl``: one JSON object per line, blank lines skipped.

    A broken *last* line is skipped with a warning (a run killed while writing it); a broken line
    anywhere else is an error.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"run '{run}': cannot read {source} ({exc}).") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows = []
    for position, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not an object")
        except ValueError as exc:
            if position == len(lines) - 1 and rows:
                logger.warning("run '%s': skipping unfinished last line %d of %s (%s)", run, number, source, exc)
                break
            raise UserInputError(f"run '{run}': line {number} of {source.name} is not a JSON object ({exc}).") from None
        rows.append(row)
    return tuple(rows)


def read_samples_json(path: str | os.PathLike[str], run: str = "") -> SampleSet:
    """Read ``samples.json`` into a :class:`SampleSet`."""
    data = _load_json(Path(path), run)
    try:
        names = tuple(str(name) for name in data["class_names"])
        samples = tuple(
            SamplePrediction(str(s["path"]), int(s["true"]), int(s["pred"]), float(s["prob"])) for s in data["samples"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserInputError(
            f"run '{run}': samples.json is malformed ({exc!r}); expected "
            "{'class_names': [...], 'samples': [{'path', 'true', 'pred', 'prob'}, ...]}."
        ) from None
    return SampleSet(names, samples)


def load_run(run_dir: str | os.PathLike[str], name: str | None = None) -> RunSummary:
    """Read a run folder. ``samples.json`` and ``plots/`` are optional; the rest is required.

    Raises:
        UserInputError: the folder or a required file is missing or unreadable.
    """
    folder = Path(run_dir)
    name = name or folder.resolve().name
    if not folder.is_dir():
        raise UserInputError(
            f"run '{name}': no such folder {folder}; expected a training run folder (alexnet train --out)."
        )
    for required in REQUIRED_FILES:
        if not (folder / required).is_file():
            raise UserInputError(
                f"run '{name}': missing {required} in {folder}; expected a finished training run "
                f"({', '.join(REQUIRED_FILES)})."
            )
    config = _load_json(RunFolder(folder).config, name)
    if not isinstance(config, dict):
        raise UserInputError(f"run '{name}': config.json holds a {type(config).__name__}; expected a JSON object.")
    try:
        evaluation = read_eval_json(RunFolder(folder).eval)
    except AlexnetLabError as exc:
        raise UserInputError(f"run '{name}': {exc}") from None
    samples = read_samples_json(RunFolder(folder).samples, name) if RunFolder(folder).samples.is_file() else None
    plots = {plot: RunFolder(folder).plot(plot) for plot in PLOT_NAMES}
    return RunSummary(
        name=name, path=folder, config=config, metrics=read_metrics_jsonl(RunFolder(folder).metrics, name),
        eval=evaluation, samples=samples, plots={key: p for key, p in plots.items() if p.is_file()},
    )


def _find_image(sample_path: str, run: RunSummary) -> Path | None:
    candidate = Path(sample_path)
    options = [candidate, run.path / candidate]
    if isinstance(run.config.get("data"), str):
        options.append(Path(run.config["data"]) / candidate)
    return next((option for option in options if option.is_file()), None)


def _thumbnail(path: Path) -> np.ndarray | None:
    from PIL import Image  # only when sample grids are drawn

    from alexnet_lab.data.images import read_image_rgb

    try:
        image = Image.fromarray(read_image_rgb(path))
    except (AlexnetLabError, OSError) as exc:
        logger.warning("skipping sample image %s: %s", path, exc)
        return None
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return np.asarray(image)


def draw_samples(run: RunSummary, path: Path) -> Path | None:
    """Draw the run's sample grid from ``samples.json``; None if no sample image can be read.

    A relative sample path is looked up from the working directory, then the run folder, then
    the config's ``data`` folder; images that cannot be found or read are left out (logged).
    """
    if run.samples is None:
        return None
    drawn = []
    for sample in run.samples.samples:
        found = _find_image(sample.path, run)
        image = _thumbnail(found) if found else None
        if image is not None:
            drawn.append((image, sample))
    if not drawn:
        logger.warning("run '%s': none of the %d sample images could be found; no sample grid", run.name,
                       len(run.samples.samples))
        return None
    images, kept = zip(*drawn)
    return plot_samples(list(images), [s.true for s in kept], [s.pred for s in kept], [s.prob for s in kept],
                        run.samples.class_names, path)


def _draw(run: RunSummary, plot: str, path: Path) -> Path | None:
    if plot == "curves":
        return plot_curves(run.metrics, path, title=run.name) if run.metrics else None
    if plot == "confusion":
        return plot_confusion(run.eval, path)
    return draw_samples(run, path)


def ensure_plots(run: RunSummary, fallback_dir: str | os.PathLike[str] | None = None) -> RunSummary:
    """Draw the plots the run folder lacks into ``RUN/plots/`` and return the updated summary.

    If ``RUN/plots/`` cannot be written (a read-only run folder), the plots go to
    ``fallback_dir`` instead, when given; otherwise they are left out.
    """
    plots = dict(run.plots)
    for plot in PLOT_NAMES:
        if plot in plots:
            continue
        for folder in (RunFolder(run.path).plot(plot).parent, Path(fallback_dir) if fallback_dir else None):
            if folder is None:
                continue
            try:
                drawn = _draw(run, plot, folder / f"{plot}.png")
            except OSError as exc:
                logger.warning("run '%s': cannot write %s plot in %s (%s)", run.name, plot, folder, exc)
                continue
            if drawn is not None:
                plots[plot] = drawn
            break
    return replace(run, plots=plots)
