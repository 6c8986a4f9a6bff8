"""The run folder as a transaction (stdlib only).

- RunLock: an exclusive ``fcntl.flock`` on RUN/.lock, held for the run's lifetime and released by
  the kernel when the process ends, however it ends; the file names the holder (pid, host, start).
- Manifest: RUN/checkpoints/manifest.json, the sha256 and epoch of every checkpoint file.
  ``Manifest.commit`` writes a file so that a kill at any instant leaves a state --resume accepts:
  temp file + fsync, digest recorded (the previous one kept) in the manifest, then os.replace.
- clean_stale_temps: the temp files a killed writer left behind, removed on the next start.
- fault_point: a TEST-ONLY hook. With ``ALEXNET_LAB_FAULT=<boundary>[@<epoch>]`` in the environment
  the process SIGKILLs itself at that write boundary (the fault-injection tests use it); without the
  variable it does nothing. Boundaries: ``<file>:written`` (temp file complete),
  ``<file>:recorded`` (manifest updated, file not yet replaced), ``<file>:replaced``, where <file>
  is last.pt, best.pt, best.safetensors, last.keras-ckpt.npz, ... and also config.json:replaced
  and metrics.jsonl:replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from alexnet_lab.core.errors import AlexnetLabError, TrainingError
from alexnet_lab.core.fileio import atomic_path, sha256_file

FAULT_ENV = "ALEXNET_LAB_FAULT"
LOCK_NAME = ".lock"
MANIFEST_NAME = "manifest.json"


class RunFolderBusy(AlexnetLabError):
    """Another process holds the run folder's lock."""


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


class RunLock:
    """Exclusive lock on RUN/.lock; the kernel drops it when the process dies (even kill -9)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunFolderBusy naming the holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFolderBusy(f"run folder '{self.path.parent}' is in use by {self._holder()}; wait for it "
                                    "to finish, or use another --out.") from None
            try:  # a failed start may have unlinked the file we opened: then lock the new one
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = fd
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)

    def _holder(self) -> str:
        for _ in range(20):  # the holder writes its name just after locking; give it a moment
            try:
                info = json.loads(self.path.read_text() or "null")
            except (OSError, ValueError):
                info = None
            if info:
                return f"process {info.get('pid')} on {info.get('host')} (started {info.get('started')})"
            time.sleep(0.05)
        return "another process"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def clean_stale_temps(run_dir: Path) -> list[Path]:
    """Remove the temp files (.NAME.XXXX.tmp, see core.fileio.atomic_path) a killed writer left.
    Only call with the lock held: then no live writer owns them."""
    removed = []
    for folder in (run_dir, run_dir / "checkpoints"):
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
            old = self.entries.get(target.name)
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


def _make_dirs(run_dir: Path) -> list[Path]:
    """mkdir -p, returning the folders this call created (outermost first)."""
    missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()][::-1]
    created = []
    for folder in missing:
        try:
            folder.mkdir()
            created.append(folder)
        except FileExistsError:  # another process made it meanwhile: not ours to remove
            pass
    return created


def _rollback(run_dir: Path, before: set[str], created: list[Path]) -> None:
    """Remove what a failed fresh start created: entries of run_dir that were not there, then the
    folders it made. Nothing that existed before this invocation is touched."""
    for name in sorted(set(os.listdir(run_dir)) - before - {LOCK_NAME}):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    if LOCK_NAME not in before:
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
    _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):  # not empty: something else lives there now
            folder.rmdir()


@contextlib.contextmanager
def locked_run_folder(run_dir: Path, fresh: bool, writer: bool = True) -> Iterator[None]:
    """Hold RUN/.lock for the block. A fresh start checks the folder holds no run yet, and if the
    block fails before the first checkpoint is committed, leaves no trace of itself.
    Processes that do not write (distributed ranks other than 0) take no lock."""
    if not writer:
        yield
        return
    created = _make_dirs(run_dir) if fresh else []
    if not run_dir.is_dir():
        raise TrainingError(f"--resume: '{run_dir}' is not a run folder; check --out.")
    before = set(os.listdir(run_dir))
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except BaseException:
        _remove_empty(created)  # the holder's files are not ours: only empty folders we made go
        raise
    try:
        if fresh and (run_dir / "config.json").exists():
            raise TrainingError(f"run folder '{run_dir}' already holds a run; pass --resume to continue it or a "
                                "new --out.")
        clean_stale_temps(run_dir)
        yield
    except BaseException:
        if fresh and not list((run_dir / "checkpoints").glob("last.*")):
            _rollback(run_dir, before, created)
        raise
    finally:
        lock.release()
