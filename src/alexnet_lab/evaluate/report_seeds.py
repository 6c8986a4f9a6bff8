"""Seed variance for `alexnet report`: runs whose config.json differs only in the seed (and in
where and how they ran: out, resume, resolved, extensions) form a group, and each group gets one
row of mean ± standard deviation over its n runs.

The figures: the best model's validation top-1 (eval.json), the held-out top-1 when the run
folder has ``held-out-eval.json`` (the JSON of ``alexnet evaluate RUN --data RUN/split.json
--split test --json``, as benchmarks/cifar_seeds.py writes it; with the recipe's own --crops), the
single-crop held-out top-1 when the folder also has ``held-out-eval-1crop.json`` (a column shown
when any run has one), the epochs finished and the
training wall time (the sum of epoch_seconds). The deviation is the sample standard deviation
(n - 1 in the denominator); with n = 1 there is none.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.evaluate.render import Table
from alexnet_lab.evaluate.run_folders import RunSummary

HELD_OUT_NAME = RunFolder.HELD_OUT_EVAL  # a run's held-out figures, beside its eval.json
ONE_CROP_NAME = RunFolder.HELD_OUT_EVAL_1CROP  # the same with --crops 1
# config.json keys that do not make two runs different experiments
NOT_THE_EXPERIMENT = frozenset({"seed", "out", "resume", "resolved", "extensions", "extra"})
NONE = "—"


def experiment_key(run: RunSummary) -> str:
    """The run's config without the seed and the bookkeeping keys, as canonical JSON."""
    return json.dumps({k: v for k, v in run.config.items() if k not in NOT_THE_EXPERIMENT}, sort_keys=True)


def seed_groups(runs: Sequence[RunSummary]) -> list[tuple[RunSummary, ...]]:
    """Runs grouped by experiment_key, groups and runs in the order given."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(experiment_key(run), []).append(run)
    return [tuple(group) for group in groups.values()]


def held_out_top1(run: RunSummary, name: str = HELD_OUT_NAME) -> float | None:
    """top1 of RUN/held-out-eval.json (or RUN/`name`), or None when the run has none (or it cannot be read)."""
    path = run.path / name
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["top1"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """(mean, sample standard deviation or None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _cell(values: Sequence[float | None], show: Callable[[float], str]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return NONE
    mean, std = mean_std(present)
    spread = "" if std is None else f" ± {show(std)}"
    return f"{show(mean)}{spread} (n={len(present)})"


def _points(value: float) -> str:
    return f"{100 * value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


def group_figures(group: Sequence[RunSummary]) -> dict[str, Any]:
    """The group's figures as numbers: {metric: {'mean', 'std', 'n'}} (for scripts and tests)."""
    columns = {"val_top1": [r.eval.top1 for r in group], "held_out_top1": [held_out_top1(r) for r in group],
               "held_out_top1_1crop": [held_out_top1(r, ONE_CROP_NAME) for r in group],
               "epochs": [float(r.epochs_done) for r in group], "wall_seconds": [r.wall_seconds for r in group]}
    out: dict[str, Any] = {}
    for name, values in columns.items():
        present = [v for v in values if v is not None]
        mean, std = mean_std(present) if present else (None, None)
        out[name] = {"mean": mean, "std": std, "n": len(present)}
    return out


def seed_table(runs: Sequence[RunSummary]) -> Table:
    """One row per group of runs that differ only in the seed: mean ± std (n) of each figure (the
    single-crop held-out column when any run has its file)."""
    one_crop = any(held_out_top1(r, ONE_CROP_NAME) is not None for r in runs)
    headers = ("runs", "framework / variant / recipe", "seeds", "val top-1 (%)", "held-out top-1 (%)",
               *(("held-out top-1, 1 crop (%)",) if one_crop else ()), "epochs", "wall time")
    rows = []
    for group in seed_groups(runs):
        first = group[0]
        rows.append((
            ", ".join(r.name for r in group),
            f"{first.setting('framework')} / {first.setting('variant')} / {first.setting('recipe')}",
            ", ".join(r.setting("seed") for r in group),
            _cell([r.eval.top1 for r in group], _points),
            _cell([held_out_top1(r) for r in group], _points),
            *((_cell([held_out_top1(r, ONE_CROP_NAME) for r in group], _points),) if one_crop else ()),
            _cell([float(r.epochs_done) for r in group], lambda v: f"{v:.1f}"),
            _cell([r.wall_seconds for r in group], _seconds),
        ))
    return Table(headers, tuple(rows))


def seed_lines(runs: Sequence[RunSummary]) -> list[str]:
    """The seed table as text lines (what `alexnet report` prints), one per group of more than one run."""
    table = seed_table(runs)
    return [f"across seeds {row[2]} ({row[1]}): " + ", ".join(f"{h} {v}" for h, v in zip(table.headers[3:], row[3:]))
            for row, group in zip(table.rows, seed_groups(runs)) if len(group) > 1]


def has_seed_groups(runs: Sequence[RunSummary]) -> bool:
    """Whether any two runs differ only in the seed (the report then shows the seed table)."""
    return any(len(group) > 1 for group in seed_groups(runs))
