"""A side-by-side comparison report of training runs, as Markdown and as one self-contained HTML.

The report is first built as a neutral list of sections (tables and rows of figures), then
rendered twice by :mod:`alexnet_lab.evaluate.render`: the Markdown links to PNG copies in a
``<stem>_assets/`` folder beside it; the HTML embeds the same PNGs as base64 data URIs and its
CSS inline, so that one file can be mailed or attached on its own.

Per-class accuracy is matched by class *name*, not label index: two runs that ordered their
classes differently still line up, and a class only one run has shows "—" for the other.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path, check_output
from alexnet_lab.evaluate.render import Figures, Section, Table, render_html, render_markdown
from alexnet_lab.evaluate.report_seeds import has_seed_groups, seed_table
from alexnet_lab.evaluate.run_folders import PLOT_NAMES, RunSummary, ensure_plots, load_run

logger = logging.getLogger(__name__)

NOT_IN_RUN = "—"  # the run has no such class
NO_IMAGES = "n/a"  # the run has the class but no validation image of it
TARGET_TOP1 = 0.8  # the summary's "time to" column: first epoch at this validation top-1
PLOT_TITLES = {
    "curves": ("Training curves", "Loss and top-1 accuracy per epoch; dashed lines separate training phases."),
    "confusion": ("Confusion matrices",
                  "Rows are true classes, normalised to 1; cells give image counts (up to 20 classes)."),
    "samples": ("Sample predictions", "Titles read true / predicted (probability): green right, red wrong."),
}


def _percent(value: float | None) -> str:
    return NO_IMAGES if value is None else f"{100.0 * value:.2f}%"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _epochs(run: RunSummary) -> str:
    planned = run.config.get("epochs")
    if isinstance(planned, int) and planned != run.epochs_done:
        return f"{run.epochs_done}/{planned}"
    return str(run.epochs_done)


def _time_to(run: RunSummary, top1: float) -> str:
    reached = run.time_to(top1)
    return "not reached" if reached is None else f"epoch {reached[0]}, {_duration(reached[1])}"


def summary_table(runs: Sequence[RunSummary], target_top1: float = TARGET_TOP1) -> Table:
    """One row per run: settings, best validation metrics (from eval.json), the first epoch at
    `target_top1` validation top-1 and the training time to it, wall time, params."""
    headers = ("run", "framework", "variant", "strategy / recipe", "epochs", "best epoch",
               "val top-1", "val top-5", "val loss", f"to {100 * target_top1:g}% val top-1", "wall time", "params")
    rows = []
    for run in runs:
        top5 = _percent(run.eval.top5) + ("" if run.eval.top5_k == 5 else f" (top-{run.eval.top5_k})")
        rows.append((
            run.name, run.setting("framework"), run.setting("variant"),
            f"{run.setting('strategy')} / {run.setting('recipe')}", _epochs(run),
            NOT_IN_RUN if run.best_epoch is None else str(run.best_epoch),
            _percent(run.eval.top1), top5, f"{run.eval.loss:.4f}", _time_to(run, target_top1),
            _duration(run.wall_seconds),
            NOT_IN_RUN if run.params is None else f"{run.params:,}",
        ))
    return Table(headers, tuple(rows))


def _class_union(runs: Sequence[RunSummary]) -> list[str]:
    seen: dict[str, None] = {}  # insertion-ordered set: first run's order, then new names as met
    for run in runs:
        seen.update(dict.fromkeys(run.eval.class_names))
    return list(seen)


def per_class_table(runs: Sequence[RunSummary]) -> Table:
    """Per-class validation accuracy, one column per run, classes matched by name.

    A cell reads "accuracy (images)"; "n/a" when the run has the class but no image of it, "—"
    when the run does not have the class at all.
    """
    rows = []
    for name in _class_union(runs):
        cells = [name]
        for run in runs:
            if name not in run.eval.per_class:
                cells.append(NOT_IN_RUN)
            else:
                cells.append(f"{_percent(run.eval.per_class[name])} ({run.eval.support[name]})")
        rows.append(tuple(cells))
    return Table(("class", *(run.name for run in runs)), tuple(rows))


def build_sections(runs: Sequence[RunSummary], target_top1: float = TARGET_TOP1) -> list[Section]:
    """The report's sections in order; a figure section is left out when no run has that plot."""
    sections = [
        Section("Summary", "Validation metrics of each run's best model (eval.json); wall time sums epoch_seconds, "
                "and so does the time to the target.", summary_table(runs, target_top1)),
        Section("Per-class accuracy", "Validation accuracy per class (number of images); classes matched by name; "
                f"{NOT_IN_RUN} = class not in the run, {NO_IMAGES} = no validation images.", per_class_table(runs)),
    ]
    if has_seed_groups(runs):
        sections.insert(1, Section(
            "Across seeds", "Runs whose config differs only in the seed, grouped: mean ± sample standard deviation "
            "(n runs) of the best model's validation top-1, the held-out top-1 (RUN/held-out-eval.json, where "
            "present), the epochs finished and the training time.", seed_table(runs)))
    for plot in PLOT_NAMES:
        items = tuple((run.name, run.plots[plot]) for run in runs if plot in run.plots)
        if items:
            sections.append(Section(*PLOT_TITLES[plot], Figures(items)))
    return sections


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def unique_run_names(run_dirs: Sequence[Path]) -> list[str]:
    """Folder names, prefixed with the parent folder (then numbered) where they would collide."""
    names = [path.resolve().name for path in run_dirs]
    names = [f"{path.resolve().parent.name}/{name}" if names.count(name) > 1 else name
             for path, name in zip(run_dirs, names)]
    return [name if names.count(name) == 1 else f"{name} ({names[:i].count(name) + 1})" for i, name in enumerate(names)]


def output_paths(out: Path) -> tuple[Path, Path]:
    """(report.md, report.html) for --out: a .md/.html name names both, anything else is a folder."""
    stem = out.with_suffix("") if out.suffix.lower() in (".md", ".html", ".htm") else out / "report"
    return stem.with_suffix(".md"), stem.with_suffix(".html")


def _assets_folder(md_path: Path) -> Path:
    return md_path.parent / f"{md_path.stem}_assets"


def check_report_output(run_dirs: Sequence[Path], out: Path, force: bool = False) -> None:
    """The output policy (core.fileio.check_output) for a report: its .md, .html and assets folder
    are replaced only with `force`, never inside one of the run folders it reads.

    Raises:
        UserInputError: the report would replace an earlier one without `force`, or be written
            into a run folder.
    """
    md_path, html_path = output_paths(out)
    check_output(md_path.parent, run_dirs, force, kind="folder",
                 owned=(md_path.name, html_path.name, f"{_assets_folder(md_path).name}/"))


def _copy_assets(runs: Sequence[RunSummary], assets: Path) -> dict[Path, str]:
    """Copy every plot into ``assets``; return plot path -> path relative to the Markdown file."""
    links = {}
    for index, run in enumerate(runs, 1):
        for plot, source in run.plots.items():
            target = assets / f"{index:02d}-{_slug(run.name)}-{plot}.png"
            if source.resolve() != target.resolve():
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
            links[source] = f"{assets.name}/{target.name}"
    return links


def write_report(
    run_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], title: str = "AlexNet run comparison",
    target_top1: float = TARGET_TOP1, force: bool = False,
) -> tuple[Path, Path]:
    """Compare training runs side by side in one Markdown and one self-contained HTML report.

    Plots a run folder lacks are drawn first (into ``RUN/plots/``, or into the report's assets
    folder when the run folder is read-only). A run without ``samples.json`` or plots simply has
    no figure in those sections.

    Args:
        run_dirs: training run folders, in the column order of the report.
        out: ``report.md`` / ``report.html`` (either names both files), or a folder to hold
            ``report.md`` and ``report.html``.
        title: the report's heading.
        target_top1: the summary says when each run first reached this validation top-1 (0..1).
        force: replace an earlier report of the same name (never a file in a run folder).

    Returns:
        (markdown path, html path). PNG copies for the Markdown go to ``<stem>_assets/``.

    Raises:
        UserInputError: no run given, a target outside (0, 1], an output the policy refuses
            (check_report_output), or a run folder lacks config.json, metrics.jsonl or eval.json.
    """
    if not run_dirs:
        raise UserInputError("expected at least one run folder to report on; received none.")
    if not 0.0 < target_top1 <= 1.0:
        raise UserInputError(f"--target-top1 takes a fraction in (0, 1], such as 0.8; received {target_top1}.")
    folders = [Path(folder) for folder in run_dirs]
    check_report_output(folders, Path(out), force)
    md_path, html_path = output_paths(Path(out))
    assets = _assets_folder(md_path)
    runs = [load_run(folder, name) for folder, name in zip(folders, unique_run_names(folders))]
    runs = [ensure_plots(run, assets / f"{i:02d}-{_slug(run.name)}") for i, run in enumerate(runs, 1)]
    sections = build_sections(runs, target_top1)
    links = _copy_assets(runs, assets)
    with atomic_path(md_path) as tmp:
        tmp.write_text(render_markdown(title, sections, links), encoding="utf-8")
    with atomic_path(html_path) as tmp:
        tmp.write_text(render_html(title, sections), encoding="utf-8")
    logger.info("wrote report on %d runs to %s and %s", len(runs), md_path, html_path)
    return md_path, html_path
