"""Fault-injection figures for run folders: kill -9 at every write boundary of one epoch's
checkpoints (last, then best, then best.safetensors; each at temp-written, manifest-recorded and
replaced) plus config.json and metrics.jsonl, resume with a bare --resume, and compare with the
same 3-epoch run uninterrupted (metrics, best/last weights, eval.json).

Prints one JSON object: faults injected, faults after which the run resumed to the uninterrupted
result, files lost (written before the kill and gone or damaged after the resume), per framework
and in total, and every case. Usage (a few minutes per framework on 2 CPU cores):
    PYTHONPATH=src .venv/bin/python benchmarks/fault_report.py [--frameworks torch keras] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.integration

from tests.conftest import run_cli  # noqa: E402
from tests.integration.fault_checks import boundaries, inject, metrics, train_args  # noqa: E402


def measure(framework: str, folder: Path) -> dict:
    reference = folder / f"{framework}-reference"
    result = run_cli(*train_args(framework), "--out", str(reference))
    if result.returncode != 0:
        raise SystemExit(f"the uninterrupted {framework} run failed: {result.stderr[-2000:]}")
    cases = [inject(framework, b, folder / f"{framework}-fault", reference) for b in boundaries(framework, metrics(reference))]
    return {"faults_injected": len(cases), "killed_at_boundary": sum(c.killed for c in cases),
            "resumed_to_uninterrupted_result": sum(c.same_as_uninterrupted for c in cases),
            "files_lost": sum(len(c.files_lost) for c in cases), "cases": [c.to_dict() for c in cases]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        report = {framework: measure(framework, folder) for framework in args.frameworks}
    totals = {key: sum(r[key] for r in report.values())
              for key in ("faults_injected", "killed_at_boundary", "resumed_to_uninterrupted_result", "files_lost")}
    print(json.dumps({"total": totals, **report}, indent=2))


if __name__ == "__main__":
    main()
