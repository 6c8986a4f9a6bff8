"""Peak memory of `alexnet train` (owt, PyTorch, streamed folder data) against the data set's size.

Generates class folders of full-size JPEGs (benchmarks/jpeg_data.py; 2,000 and 20,000 by default)
under a temporary folder in /tmp, runs `alexnet train --data FOLDER --variant owt --epochs 1
--limit-steps 3 --batch-size 16 --val-ratio 0.01` on each in a fresh process, and reports:

  main_peak_mb  the training process's peak RSS (ru_maxrss from wait4: it and the loader
                workers it waited for, the largest of them)
  tree_peak_mb  the peak of the summed RSS of the process and all its children (DataLoader
                workers), sampled every 50 ms from /proc

then deletes the folders (unless --keep). Prints one JSON object. Linux only.
Run: `nice -n 10 python benchmarks/streaming_memory.py [--sizes 2000 20000] [--mode stream|memory]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from jpeg_data import make_jpeg_folder  # noqa: E402

TARGET_MB = 200


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children") if Path(f"/proc/{current}").exists() else []:
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return found


def measure(folder: Path, out: Path, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "alexnet_lab", "train", "--data", str(folder), "--variant", "owt", "--epochs", "1",
               "--limit-steps", "3", "--batch-size", "16", "--val-ratio", "0.01", "--data-mode", mode,
               "--out", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], sum(_rss_kb(p) for p in _tree(process.pid)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    if process.returncode:
        raise SystemExit(f"train failed: {process.stderr.read().decode()[-2000:]}")
    return {"images": None, "main_peak_mb": round(usage.ru_maxrss / 1024, 1), "tree_peak_mb": round(peak[0] / 1024, 1),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--mode", default="stream", choices=["stream", "memory"])
    parser.add_argument("--keep", default=None, help="keep the generated folders here (else a temp folder, deleted)")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="alexnet-streaming-", dir="/tmp"))
    results = []
    try:
        for count in args.sizes:
            started = time.perf_counter()
            folder = make_jpeg_folder(root / f"jpegs-{count}", count)
            generated = time.perf_counter() - started
            row = measure(folder, root / f"run-{count}", args.mode)
            results.append({**row, "images": count, "generate_seconds": round(generated, 1)})
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    peaks = [r["tree_peak_mb"] for r in results]
    print(json.dumps({"mode": args.mode, "command": "alexnet train --variant owt --epochs 1 --limit-steps 3 "
                      "--batch-size 16 --val-ratio 0.01", "results": results,
                      "tree_peak_spread_mb": round(max(peaks) - min(peaks), 1), "target_mb": TARGET_MB}, indent=2))


if __name__ == "__main__":
    main()
