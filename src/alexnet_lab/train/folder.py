"""The run folder as a transaction (stdlib only); the lock is in .lock.

- Manifest: RUN/checkpoints/manifest.json, the sha256 and epoch of every checkpoint file.
  ``Manifest.commit`` writes a file so that a kill at any instant leaves a state --resume accepts:
  temp file + fsync, digest recorded (the previous one kept) in the manifest, then os.replace.
- clean_stale_temps: the temp files a killed writer left behind, removed on the next start.
- check_run_output: the output policy (core.fileio.check_output) for --out and --cache-dir.
- fault_point: a TEST-ONLY hook. With ``ALEXNET_LAB_FAULT=<boundary>[@<epoch>]`` in the environment
  the process SIGKILLs itself at that write boundary (the fault-injection tests use it); without the
  variable it does nothing. Boundaries: ``<file>:written`` (temp file complete),
  ``<file>:recorded`` (manifest updated, file not yet replaced), ``<file>:replaced``, where <file>
  is last.pt, best.pt, best.safetensors, last.keras-ckpt.npz, ... and also config.json:replaced
  and metrics.jsonl:replaced.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from alexnet_lab.core.errors import AlexnetLabError, TrainingError
from alexnet_lab.core.fileio import atomic_path, check_output, sha256_file
from alexnet_lab.core.run_folder import RunFolder

FAULT_ENV = "ALEXNET_LAB_FAULT"
MANIFEST_NAME = "manifest.json"


class CheckpointCorrupt(AlexnetLabError):
    """A checkpoint whose bytes do not match the digest the run recorded for it."""


class StorageError(AlexnetLabError):
    """The run folder cannot be written: disk full, file-size limit, permissions, read-only."""


_CAUSES = {errno.ENOSPC: "no space left on the device (disk full)", errno.EDQUOT: "disk quota exceeded",
           errno.EFBIG: "file too large (the file-size limit, ulimit -f, or the file system's)",
           errno.EACCES: "permission denied", errno.EPERM: "operation not permitted (permission denied)",
           errno.EROFS: "read-only file system", errno.ENOTDIR: "a file is where a folder is expected",
           errno.EISDIR: "a folder is where a file is expected"}


def storage_error(exc: OSError, run_dir: Path, resumable: bool) -> StorageError | None:
    """One line naming the path and the cause, for the OSErrors a user fixes on their side; else None."""
    cause = _CAUSES.get(exc.errno)
    if cause is None:
        return None
    path = Path(exc.filename) if exc.filename else run_dir
    temp = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", path.name)  # atomic_path's temp file: name its target
    path = path.with_name(temp.group(1)) if temp else path
    verb = "write" if path == run_dir or run_dir in path.parents else "use"  # e.g. an unreadable data file
    then = f"continue with 'alexnet train --resume --out {run_dir}'" if resumable else "run the command again"
    return StorageError(f"cannot {verb} '{path}': {cause}. Nothing already written was lost (earlier "
                        f"checkpoints are intact); fix this, then {then}.")


def check_run_output(config) -> None:
    """Refuse a run folder (--out) or data cache (--cache-dir) that is, or lies inside, what the run
    reads: the data (a class folder's run folder would become a class of the next run), a
    --val-data or --data-dir, or the weight file / run folder of --weights; and one that is a file.
    Whether an existing run folder may be written (--resume, the lock) is locked_run_folder's rule.

    Raises:
        UserInputError: from core.fileio.check_output, before any data or weights are read.
    """
    from alexnet_lab.weights.files import source_files

    named = ("synthetic", "cifar10")  # --data names that are not paths (data.datasets.read_source)
    paths = [config.data if config.data not in named else None, config.val_data, config.data_dir]
    inputs = [Path(p).expanduser() for p in paths if p and Path(p).expanduser().exists()]
    if config.weights != "none":
        inputs += source_files(config.weights)
    check_output(config.out, inputs, kind="folder", owned=())
    if config.cache_dir:
        check_output(config.cache_dir, inputs, kind="folder", owned=())


def fault_point(name: str, epoch: int | None = None) -> None:
    """Test-only: SIGKILL this process here when ALEXNET_LAB_FAULT names this boundary (and epoch)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, at = wanted.partition("@")
    if point == name and (not at or epoch is None or int(at) == epoch):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (the directory entry, not only the file's bytes)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_stale_temps(run_dir: Path) -> list[Path]:
    """Remove the temp files (.NAME.XXXX.tmp, see core.fileio.atomic_path) a killed writer left.
    Only call with the lock held: then no live writer owns them."""
    removed = []
    for folder in (run_dir, RunFolder(run_dir).checkpoints):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class Manifest:
    """RUN/checkpoints/manifest.json: {file name: {"sha256", "epoch", "previous"}}.

    "previous" is the entry before the latest commit: a kill after the manifest was written but
    before the file was replaced leaves the old file, which then still verifies.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())["files"]
            except (ValueError, KeyError, TypeError):
                raise CheckpointCorrupt(f"{self.path} is damaged; restore it, or delete it to resume without "
                                        "checking the checkpoints' digests.") from None

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def _save(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"format": "alexnet-lab manifest 1", "files": self.entries}, indent=1))

    def commit(self, target: Path, write: Callable[[Path], None], epoch: int) -> Path:
        """Write `target` through `write(temp_path)` so that a kill at any instant is recoverable."""
        target = Path(target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            try:
                write(tmp)
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            except OSError as exc:  # name the file being written, not its temp file
                raise OSError(exc.errno, exc.strerror, str(target)) from None
            os.chmod(tmp, 0o644)
            fault_point(f"{target.name}:written", epoch)
            old = self.entries.get(target.name) if target.exists() else None  # a record whose file never landed is no previous
            self.entries[target.name] = {"sha256": sha256_file(tmp), "epoch": epoch,
                                         "previous": {k: old[k] for k in ("sha256", "epoch")} if old else None}
            self._save()
            fault_point(f"{target.name}:recorded", epoch)
            os.replace(tmp, target)
            fsync_dir(target.parent)
            fault_point(f"{target.name}:replaced", epoch)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def check_not_lost(self, target: Path) -> None:
        """Raise CheckpointCorrupt when `target` is gone although a commit of it had landed, so that
        resuming would silently start the run again. It had landed when its record has a previous
        one (a file was on disk then), when it is past the first epoch, or when another file was
        committed after it (the best checkpoint follows the last one). A missing file recorded only
        by a first commit is a kill before that commit's rename: a fresh start is the uninterrupted run."""
        target = Path(target)
        entry = self.entries.get(target.name)
        if entry is None or target.exists():
            return
        if entry.get("previous") or int(entry["epoch"]) > 1 or len(self.entries) > 1:
            raise CheckpointCorrupt(f"checkpoint {target} is missing, though {self.path} records it at epoch "
                                    f"{entry['epoch']}; restore it from a copy, or delete the run folder's "
                                    "checkpoints/ to restart the run.")

    def verify(self, target: Path) -> int | None:
        """The epoch `target` holds, checked against its recorded digest; None when the file does
        not exist or the run has no record of it (written before manifests). Raises
        CheckpointCorrupt when the bytes match neither the latest nor the previous record."""
        target = Path(target)
        entry = self.entries.get(target.name)
        if entry is None or not target.is_file():
            return None
        digest = sha256_file(target)
        for record in (entry, entry.get("previous")):
            if record and record["sha256"] == digest:
                if record is not entry:  # the commit never landed: the record follows the file again
                    self.entries[target.name] = {**record, "previous": None}
                    self._save()
                return int(record["epoch"])
        raise CheckpointCorrupt(f"checkpoint {target} is corrupt: its sha256 {digest[:12]}... is not the one "
                                f"recorded in {self.path}; restore it from a copy, or delete the run folder's "
                                "checkpoints/ to restart the run.")


def check_best(manifest: Manifest, best_files: list[Path], best_epoch: int, last_epoch: int) -> list[Path]:
    """The best-model files that must be re-derived from the last checkpoint on resume.

    The writer commits last first, then the best files, so a best file that disagrees with the
    record in the last checkpoint is stale only when the best epoch is the last epoch, and can then
    be rebuilt from it. Any other disagreement means the folder was changed by hand.
    """
    if not manifest.exists:
        return []
    stale = []
    for path in best_files:
        if path.name not in manifest.entries and path.is_file():
            continue  # written before this run folder had a manifest: nothing to check it against
        try:
            held = manifest.verify(path)
        except CheckpointCorrupt:
            if best_epoch != last_epoch:
                raise
            held = None
        if held != best_epoch:
            if best_epoch != last_epoch:
                raise TrainingError(f"{path} holds epoch {held}, but the run's last checkpoint records epoch "
                                    f"{best_epoch} as the best; restore the file from a copy or start a new run.")
            stale.append(path)
    return stale
