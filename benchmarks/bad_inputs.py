"""Figures for the bad-input corpus: how many hostile inputs, tracebacks, and peak memory.

Builds every case of tests/integration/bad_inputs/ in a temporary folder, runs each
through `python -m alexnet_lab` in a fresh process, and prints one JSON object:
  inputs_tried, as_expected, tracebacks, problems (case -> what went wrong),
  surfaces: per command exercised, inputs tried, tracebacks, silent wrong answers (exit 0 where a
      refusal was due, or a wrong answer), files lost (protected files changed or deleted), and
      the worst input's peak memory,
  worst_refusal: the refusal with the highest peak RSS of the CLI process (os.wait4's ru_maxrss
      of that process alone), and worst_refusal_without_framework (the ones refused before
      torch or Keras is imported: the memory a hostile file itself costs),
  legitimate: the full-size owt .safetensors the limits are compared with (its size, and the
      peak RSS of `alexnet info` loading it),
  cases: per case, what was expected, the exit status, peak RSS (MB) and seconds.
Run: `PYTHONPATH=src python benchmarks/bad_inputs.py` (about 2 minutes on 2 shared cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, for the corpus

from tests.integration.bad_inputs import build_corpus, run_case, run_cli_measured  # noqa: E402

NEEDS_TORCH = {"pickle-with-code.pth", "bit-flip.pth", "batch-with-one-bad-image", "predict-a-1xN-image-among-good-ones"}


def _per_surface(rows: list[dict]) -> dict[str, dict]:
    """inputs tried, tracebacks, silent wrong answers, files lost and the worst peak memory, per command."""
    out = {}
    for surface in sorted({r["surface"] for r in rows}):
        mine = [r for r in rows if r["surface"] == surface]
        worst = max(mine, key=lambda r: r["peak_rss_mb"])
        out[surface] = {
            "inputs_tried": len(mine),
            "tracebacks": sum("traceback" in r["problems"] for r in mine),
            "silent_wrong_answers": sum(any(p.startswith("silent wrong answer") for p in r["problems"]) for r in mine),
            "files_lost": sum(any(p.startswith("lost:") for p in r["problems"]) for r in mine),
            "other_problems": sum(bool(r["problems"]) for r in mine),
            "worst_peak_rss_mb": worst["peak_rss_mb"], "worst_input": worst["name"],
        }
    return out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as work:
        cases, good = build_corpus(Path(work))
        rows = []
        for case in cases:
            result, problems = run_case(case)
            rows.append({"name": case.name, "surface": case.command, "expect": case.expect,
                         "returncode": result["returncode"], "peak_rss_mb": round(result["peak_rss_mb"], 1),
                         "seconds": round(result["seconds"], 2), "problems": problems,
                         "stderr": result["stderr"].strip()[:200]})
        legit = run_cli_measured(("info", str(good["owt"])))
        legit_mb = good["owt"].stat().st_size / 2**20
    refusals = [r for r in rows if r["expect"] == "error"]
    frameworkless = [r for r in refusals if r["name"] not in NEEDS_TORCH]
    worst = max(refusals, key=lambda r: r["peak_rss_mb"])
    worst_plain = max(frameworkless, key=lambda r: r["peak_rss_mb"])
    doc = {
        "inputs_tried": len(rows),
        "as_expected": sum(not r["problems"] for r in rows),
        "tracebacks": sum("traceback" in r["problems"] for r in rows),
        "problems": {r["name"]: r["problems"] for r in rows if r["problems"]},
        "surfaces": _per_surface(rows),
        "worst_refusal": {"name": worst["name"], "peak_rss_mb": worst["peak_rss_mb"]},
        "worst_refusal_without_framework": {"name": worst_plain["name"], "peak_rss_mb": worst_plain["peak_rss_mb"]},
        "legitimate": {"file": "owt.safetensors (random full-size weights)", "size_mb": round(legit_mb, 1),
                       "info_peak_rss_mb": round(legit["peak_rss_mb"], 1)},
        "cases": rows,
    }
    print(json.dumps(doc, indent=2))
    return 0 if not doc["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
