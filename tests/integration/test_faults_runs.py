"""Run folders under faults, as users hit them: kill -9 at a checkpoint's write boundaries, two
writers at once, disk full, read-only and permission-denied folders, corrupted checkpoints,
failed starts, and --resume with changed flags or the wrong framework.

The kills use the test-only hook ALEXNET_LAB_FAULT=<boundary>@<epoch> (alexnet_lab.train.folder),
which makes the writer SIGKILL itself at that point; tests/integration/fault_checks.py compares
the resumed run with the same run uninterrupted. The whole matrix of boundaries (both frameworks)
is slow-marked; `benchmarks/fault_report.py` prints its figures as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_lab.cli import main
from alexnet_lab.train.folder import Manifest
from alexnet_lab.train.lock import RunLock
from tests.conftest import REPO, run_cli
from tests.integration.fault_checks import boundaries, inject, metrics, train_args

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def one_line_error(result) -> str:
    """The error of a refused command: exit 2, one 'alexnet: error:' line (after any progress log
    lines `train` writes to stderr), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if not line.startswith("INFO ")]
    assert len(errors) == 1 and errors[0].startswith("alexnet: error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return errors[0]


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file of a run folder but the lock (whose holder line changes with each holder)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> dict:
    """The uninterrupted reference run, started by two `alexnet train` at the same moment into one
    folder: one trains, the other must be refused."""
    run = tmp_path_factory.mktemp("ref") / "run"
    args = [sys.executable, "-m", "alexnet_lab", *train_args("torch"), "--out", str(run)]
    procs = [subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.pid, *p.communicate(timeout=900), p.returncode) for p in procs]
    return {"run": run, "results": results}


@pytest.fixture(scope="module")
def reference(race) -> Path:
    assert sorted(r[3] for r in race["results"]) == [0, 2], [r[2][-1500:] for r in race["results"]]
    return race["run"]


def copy_run(reference: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    return run


def test_two_writers_at_once_one_is_refused(race, reference):
    (winner,) = [r for r in race["results"] if r[3] == 0]
    (loser,) = [r for r in race["results"] if r[3] != 0]
    line = one_line_error(subprocess.CompletedProcess([], loser[3], loser[1], loser[2]))
    assert f"in use by process {winner[0]} on " in line and "started" in line
    assert [row["epoch"] for row in metrics(reference)] == [1, 2, 3]


def test_a_held_lock_refuses_a_resume_and_names_its_holder(reference):
    before = digests(reference)
    lock = RunLock(reference)
    lock.acquire()
    try:
        result = run_cli("train", "--resume", "--out", str(reference))
    finally:
        lock.release()
    assert f"in use by process {os.getpid()}" in one_line_error(result)
    assert digests(reference) == before


def test_kill_between_last_and_best_resumes_to_the_uninterrupted_result(reference, tmp_path):
    """Issue #15 item 3: killed after last.pt of an improving epoch, before best.pt."""
    boundary = next(b for b in boundaries("torch", metrics(reference)) if b.startswith("last.pt:replaced"))
    result = inject("torch", boundary, tmp_path / "run", reference)
    assert result.killed and result.resumed, result.problems
    assert result.problems == [] and result.files_lost == []


@pytest.mark.slow
@pytest.mark.parametrize("index", range(11))
def test_kill_at_every_write_boundary_torch(reference, tmp_path, index):
    boundary = boundaries("torch", metrics(reference))[index]
    result = inject("torch", boundary, tmp_path / "run", reference)
    assert result.same_as_uninterrupted and result.files_lost == [], (boundary, result.problems)


@pytest.fixture(scope="module")
def keras_reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("kref") / "run"
    result = run_cli(*train_args("keras"), "--out", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("step", ["last:replaced", "best:recorded", "best.safetensors:written"])
def test_kill_at_write_boundaries_keras(keras_reference, tmp_path, step):
    wanted = step.replace("last:", "last.keras-ckpt.npz:").replace("best:", "best.keras-ckpt.npz:")
    boundary = next(b for b in boundaries("keras", metrics(keras_reference)) if b.startswith(wanted))
    result = inject("keras", boundary, tmp_path / "run", keras_reference)
    assert result.same_as_uninterrupted and result.files_lost == [], (boundary, result.problems)


EMA = ("--ema-decay", "0.9", "--eval-flip")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_kill_9_with_the_moving_average_resumes_to_the_uninterrupted_result(tmp_path, framework):
    """--ema-decay: killed after the last checkpoint of an improving epoch, the resumed run's
    metrics, averaged best / last models and eval.json are the uninterrupted run's."""
    reference = tmp_path / "reference"
    result = run_cli(*train_args(framework, *EMA), "--out", str(reference))
    assert result.returncode == 0, result.stderr[-2000:]
    suffix = "last.pt" if framework == "torch" else "last.keras-ckpt.npz"
    boundary = next(b for b in boundaries(framework, metrics(reference)) if b.startswith(f"{suffix}:replaced"))
    result = inject(framework, boundary, tmp_path / "run", reference, EMA)
    assert result.same_as_uninterrupted and result.files_lost == [], (boundary, result.problems)


@pytest.mark.parametrize("flags, expected", [
    (["--variant", "vgg"], "unknown variant 'vgg'"), (["--lr", "nan"], "--lr must be a finite number"),
    (["--input-size", "8"], "received 8x8"), (["--skip-layers", "fc77"], "Did you mean 'fc7'"),
    (["--momentum", "-1"], "--momentum must be >= 0 and < 1"), (["--label-smoothing", "2"], "--label-smoothing"),
    (["--num-workers", "-1"], "--num-workers must be >= 0"), (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_a_failed_start_leaves_no_trace(tmp_path, capsys, flags, expected):
    kept = tmp_path / "existing"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    for out in (tmp_path / "new" / "run", kept):
        assert main(["train", "--data", "synthetic", "--variant", "cifar", *flags, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "new").exists() and sorted(os.listdir(kept)) == ["notes.txt"]


def test_a_start_failing_inside_the_folder_removes_what_it_created(tmp_path):
    """--strict on an unreadable image fails while decoding, with the folder already locked."""
    from alexnet_lab.data import SyntheticSpec, write_synthetic_folder

    data = write_synthetic_folder(SyntheticSpec(num_classes=2, size=32, per_class=6, seed=3), tmp_path / "data")
    (data / sorted(os.listdir(data))[0] / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "runs" / "run"
    result = run_cli("train", "--data", str(data), "--variant", "cifar", "--strict", "--out", str(out))
    assert "broken.png" in one_line_error(result)
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_changed_flags_and_lists_each(reference):
    before = digests(reference)
    line = one_line_error(run_cli("train", "--resume", "--out", str(reference), "--epochs", "5", "--lr", "0.5"))
    assert "--lr 0.5 (the run has 0.05)" in line and "--epochs" not in line.split("differ")[1].split(". Drop")[0]
    line = one_line_error(run_cli("train", "--resume", "--out", str(reference), "--epochs", "2", "--batch-size", "8"))
    assert "--epochs 2 (the run has 3; --epochs can only grow)" in line and "--batch-size 8 (the run has 32)" in line
    assert digests(reference) == before


def test_resume_with_the_wrong_framework_is_refused_before_importing_it(reference):
    """Issue #15 item 7 (it was a segfault): refused in one line, and no framework was imported."""
    line = one_line_error(run_cli("train", "--resume", "--out", str(reference), "--framework", "keras"))
    assert "--framework keras (the run has torch)" in line
    probe = ("import sys; from alexnet_lab.cli import main; "
             f"rc = main(['train', '--resume', '--out', {str(reference)!r}, '--framework', 'keras']); "
             "print(rc, sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True, timeout=300)
    assert result.stdout.split() == ["2", "[]"], result.stdout + result.stderr[-2000:]


def _file_size_limit(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_keeps_the_checkpoints_then_the_run_extends(reference, tmp_path):
    """RLIMIT_FSIZE (30 MB, under last.pt's 43 MB) makes the epoch-4 checkpoint write fail with
    EFBIG, as a full disk would with ENOSPC. Then a stale temp file is left behind on purpose, and
    the resume (no limit) extends the run to 4 epochs in a process that never imports TensorFlow."""
    run = copy_run(reference, tmp_path)
    checkpoints = {n: d for n, d in digests(run).items() if n.startswith("checkpoints/") and "manifest" not in n}
    args = [sys.executable, "-m", "alexnet_lab", "train", "--resume", "--out", str(run), "--epochs", "4"]
    full = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600,
                          preexec_fn=_file_size_limit(30 << 20))
    line = one_line_error(full)
    assert f"{run / 'checkpoints' / 'last.pt'}" in line and "file too large" in line and "--resume" in line
    after = digests(run)
    assert all(after.get(name) == digest for name, digest in checkpoints.items())  # nothing lost
    assert Manifest(run / "checkpoints").verify(run / "checkpoints" / "last.pt") == 3
    assert not list((run / "checkpoints").glob(".*.tmp"))
    (run / "checkpoints" / ".last.pt.stale0.tmp").write_bytes(b"left by a killed writer")
    probe = ("import sys; from alexnet_lab.cli import main; "
             f"rc = main(['train', '--resume', '--out', {str(run)!r}]); "
             "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    resumed = subprocess.run([sys.executable, "-c", probe], env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.stdout.split()[-3:] == ["0", "False", "False"], resumed.stderr[-2000:]
    assert [row["epoch"] for row in metrics(run)] == [1, 2, 3, 4]
    assert [row["epoch"] for row in metrics(run)[:3]] == [row["epoch"] for row in metrics(reference)]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 4 and [(e["from_epochs"], e["to_epochs"]) for e in config["extensions"]] == [(3, 4)]
    assert not list((run / "checkpoints").glob(".*.tmp"))


@pytest.mark.slow
def test_a_really_full_disk(reference, tmp_path):
    """ENOSPC itself: the run copied onto a tmpfs with 30 MB left (last.pt is 43 MB), in a private
    mount namespace; the folder is copied back out for the checks."""
    run = copy_run(reference, tmp_path)
    if not _can_mount_read_only(run):
        pytest.skip("no private mount namespace here (unshare -m / mount)")
    used_mb = sum(p.stat().st_size for p in run.rglob("*") if p.is_file()) // (1 << 20)
    disk, out = tmp_path / "disk", tmp_path / "after"
    disk.mkdir()
    command = (f"mount -t tmpfs -o size={used_mb + 30}m tmpfs {disk} && cp -a {run} {disk}/run && "
               f"{sys.executable} -m alexnet_lab train --resume --out {disk}/run --epochs 4; rc=$?; "
               f"cp -a {disk}/run {out}; exit $rc")
    result = subprocess.run(["unshare", "-m", "sh", "-c", command], env=ENV, capture_output=True, text=True,
                            timeout=900)
    line = one_line_error(result)
    assert "no space left on the device (disk full)" in line and "checkpoints/last.pt" in line
    before, after = digests(run), digests(out)
    rewritten = ("config.json", "metrics.jsonl", "tensorboard/")  # at every start: the extension, the history
    assert all(after.get(n) == d for n, d in before.items() if not n.startswith(rewritten))
    assert Manifest(out / "checkpoints").verify(out / "checkpoints" / "last.pt") == 3
    assert not list((out / "checkpoints").glob(".*.tmp"))


def _can_mount_read_only(folder: Path) -> bool:
    probe = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "sh", "-c", probe], capture_output=True).returncode == 0


def test_read_only_run_folder(reference, tmp_path):
    """A read-only bind mount of the run folder, in a private mount namespace (root ignores chmod)."""
    run = copy_run(reference, tmp_path)
    if not _can_mount_read_only(run):
        pytest.skip("no private mount namespace here (unshare -m / mount)")
    before = digests(run)
    command = (f"mount --bind {run} {run} && mount -o remount,ro,bind {run} && exec {sys.executable} -m "
               f"alexnet_lab train --resume --out {run} --epochs 4")
    result = subprocess.run(["unshare", "-m", "sh", "-c", command], env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert "read-only file system" in one_line_error(result)
    assert digests(run) == before


def test_permission_denied(reference, tmp_path):
    """The run folder made read-only with chmod -R a-w, the command run without the capabilities
    that let root ignore file permissions (setpriv drops CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH)."""
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv here")
    run = copy_run(reference, tmp_path)
    before = digests(run)
    for path in [run, *run.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", sys.executable, "-m",
               "alexnet_lab", "train", "--resume", "--out", str(run), "--epochs", "4"]
    try:
        result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    finally:
        for path in [run, *run.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    line = one_line_error(result)
    assert "permission denied" in line and str(run) in line
    assert digests(run) == before


def test_a_corrupted_checkpoint_is_one_line_not_garbage(reference, tmp_path):
    run = copy_run(reference, tmp_path)
    last = run / "checkpoints" / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    line = one_line_error(run_cli("train", "--resume", "--out", str(run), "--epochs", "4"))
    assert "is corrupt" in line and str(last) in line


def test_a_deleted_last_checkpoint_is_refused_not_a_silent_restart(reference, tmp_path):
    """--resume without the last checkpoint, though the manifest shows it had landed: one line, and
    the run's metrics and best model stay as they were (a restart would train them again)."""
    run = copy_run(reference, tmp_path)
    last = run / "checkpoints" / "last.pt"
    last.unlink()
    before = digests(run)
    line = one_line_error(run_cli("train", "--resume", "--out", str(run), "--epochs", "4"))
    assert "is missing" in line and str(last) in line and "restart the run" in line
    assert digests(run) == before


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_killed_loader_worker_is_one_line_and_the_run_goes_on(tmp_path, epoch):
    """A DataLoader worker SIGKILLed in the given epoch (as the kernel's out-of-memory killer does):
    one line that says how to go on, not torch's traceback. In epoch 2 the run keeps epoch 1's
    checkpoint and --resume finishes it; in epoch 1 the folder is rolled back and the same command
    runs again."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(96):
        folder = tmp_path / "photos" / f"class_{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "photos"), "--variant", "cifar", "--epochs", "3", "--batch-size", "8",
            "--num-workers", "1", "--precision", "fp32", "--out", str(run)]
    killed = subprocess.run([sys.executable, "-m", "alexnet_lab", *args], capture_output=True, text=True, timeout=600,
                            env={**ENV, "ALEXNET_LAB_FAULT": f"loader-worker@{epoch}"})
    line = one_line_error(killed)
    assert "data loader worker died" in line and "fewer --num-workers" in line
    if epoch == 1:
        assert "run the same command again" in line and not run.exists()
        done = run_cli(*args)
    else:
        assert f"--resume --out '{run}'" in line and (run / "checkpoints" / "last.pt").is_file()
        done = run_cli("train", "--resume", "--out", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(row)["epoch"] for row in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_demo_validates_first_and_never_replaces_a_run_unasked(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "run").mkdir(parents=True)
    (out / "run" / "eval.json").write_text("{}")
    assert main(["demo", "--out", str(out), "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    assert main(["demo", "--out", str(out)]) == 2
    assert "already holds this command's earlier output (run)" in capsys.readouterr().err
    lock = RunLock(out / "run")
    lock.acquire()
    try:
        assert main(["demo", "--out", str(out), "--force", "--epochs", "1"]) == 2
        assert f"in use by process {os.getpid()}" in capsys.readouterr().err
    finally:
        lock.release()
    assert (out / "run" / "eval.json").read_text() == "{}"


def test_train_help_lists_every_choice(capsys):
    from alexnet_lab.train.recipes import RECIPES

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    from alexnet_lab.core.spec import VARIANTS

    for choices in ("{torch,keras}", "{" + ",".join(VARIANTS) + "}", "{scratch,head,finetune,two-phase}", "{sgd,adamw}",
                    "{cosine,onecycle,step,constant}", "{auto,fp32,bf16,fp16}", "{none,cifar,cifar-cutout,imagenet,flip}",
                    "{none,mirrored,multi-worker}", "{auto,on,off}", "{" + ",".join(RECIPES) + "}"):
        assert choices in text, choices
