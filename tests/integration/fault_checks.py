"""Fault injection for run folders: kill -9 a training run at a named write boundary (the test-only
ALEXNET_LAB_FAULT hook, see alexnet_lab.train.folder), resume it, and compare with the same
run uninterrupted. Shared by tests/integration/test_faults_runs.py and benchmarks/fault_report.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tests.conftest import run_cli

# 3 epochs of the tiny 32x32 model in fp32 (bf16 on this CPU would not compare exactly)
TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "20", "--batch-size", "32",
        "--lr", "0.05", "--augment", "cifar", "--precision", "fp32", "--epochs", "3"]
TIMING = {"epoch_seconds", "images_per_second"}
CHECKPOINT_SUFFIX = {"torch": ".pt", "keras": ".keras-ckpt.npz"}


def train_args(framework: str, *extra: str) -> list[str]:
    return ["train", *TINY, "--framework", framework, *extra]


def metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def improved_epochs(rows: list[dict]) -> list[int]:
    """Epochs whose val top-1 beat every earlier one (those write the best files)."""
    best, out = -1.0, []
    for row in rows:
        if row["val_top1"] > best:
            best = row["val_top1"]
            out.append(int(row["epoch"]))
    return out


def boundaries(framework: str, rows: list[dict]) -> list[str]:
    """Every write boundary of the last epoch that improved, if it is not the first (so a best file
    of an earlier epoch exists and can be left behind, and no later epoch overwrites it), plus
    config.json before the first epoch."""
    epoch = improved_epochs(rows)[-1]
    files = [f"last{CHECKPOINT_SUFFIX[framework]}", f"best{CHECKPOINT_SUFFIX[framework]}", "best.safetensors"]
    points = [f"{name}:{step}@{epoch}" for name in files for step in ("written", "recorded", "replaced")]
    return ["config.json:replaced@0", *points, f"metrics.jsonl:replaced@{epoch}"]


def run_files(run: Path) -> set[str]:
    """The run folder's files, relative (not TensorBoard's, whose names vary, nor the .lock)."""
    return {str(p.relative_to(run)) for p in run.rglob("*")
            if p.is_file() and "tensorboard" not in p.parts and p.name != ".lock"}


def _tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def same_result(run: Path, reference: Path) -> list[str]:
    """How `run` differs from `reference`: metrics (not timings), best/last weights, eval.json."""
    problems = []
    got, want = metrics(run), metrics(reference)
    if [r["epoch"] for r in got] != [r["epoch"] for r in want]:
        problems.append(f"epochs {[r['epoch'] for r in got]} != {[r['epoch'] for r in want]}")
    for a, b in zip(got, want):
        for key in set(b) - TIMING:
            if isinstance(b[key], float) and not np.isclose(a.get(key, np.nan), b[key], rtol=1e-6, atol=1e-7):
                problems.append(f"epoch {b['epoch']} {key}: {a.get(key)} != {b[key]}")
    for name in ("best.safetensors", "last.safetensors"):
        if not (run / name).is_file():
            problems.append(f"{name} missing")
            continue
        mine, theirs = _tensors(run / name), _tensors(reference / name)
        worst = max(float(np.abs(mine[k].astype(np.float64) - theirs[k]).max()) for k in theirs)
        if worst > 1e-6:
            problems.append(f"{name} differs by {worst:.2e}")
    ev, ev_ref = (json.loads((r / "eval.json").read_text()) for r in (run, reference))
    if ev["top1"] != ev_ref["top1"]:
        problems.append(f"eval top-1 {ev['top1']} != {ev_ref['top1']}")
    best_row = max(got, key=lambda r: r["val_top1"]) if got else None
    if best_row is not None and not np.isclose(ev["top1"], best_row["val_top1"]):
        problems.append(f"best model's top-1 {ev['top1']} is not the history's best {best_row['val_top1']}")
    return problems


def intact_after_kill(run: Path) -> list[str]:
    """Checkpoint files present after the kill whose bytes no longer match the manifest."""
    from alexnet_lab.train.folder import CheckpointCorrupt, Manifest

    folder = run / "checkpoints"
    if not (folder / "manifest.json").is_file():
        return []
    manifest, bad = Manifest(folder), []
    for path in sorted(folder.iterdir()):
        if path.name in manifest.entries:
            try:
                manifest.verify(path)
            except CheckpointCorrupt:
                bad.append(path.name)
    return bad


@dataclass
class FaultResult:
    boundary: str
    framework: str
    killed: bool  # the process died of SIGKILL at the boundary
    resumed: bool  # --resume exited 0
    same_as_uninterrupted: bool
    files_lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def inject(framework: str, boundary: str, run: Path, reference: Path, extra: tuple[str, ...] = ()) -> FaultResult:
    """Train with ALEXNET_LAB_FAULT=boundary (and `extra` flags), resume with a bare --resume,
    compare with reference."""
    shutil.rmtree(run, ignore_errors=True)
    first = run_cli(*train_args(framework, *extra), "--out", str(run), env={"ALEXNET_LAB_FAULT": boundary})
    killed = first.returncode == -9
    damaged = intact_after_kill(run) if killed else []
    written = {name for name in run_files(run) if not name.split("/")[-1].endswith(".tmp")}
    resumed = run_cli("train", "--resume", "--out", str(run)) if killed else first
    problems = [] if killed else [f"not killed (exit {first.returncode}): {first.stderr[-500:]}"]
    if resumed.returncode != 0:
        problems.append(f"resume failed: {resumed.stderr[-800:]}")
    else:
        problems += same_result(run, reference)
    lost = sorted(set(damaged) | (written - run_files(run)))  # what the killed run had written, gone or damaged
    return FaultResult(boundary, framework, killed, resumed.returncode == 0, killed and not problems, lost, problems)
