"""RunLock and locked_run_folder: one writer per run folder, and failed starts that leave no trace.

RunLock is an exclusive ``fcntl.flock`` on RUN/.lock, held for the run's lifetime and released by
the kernel when the process ends, however it ends (even kill -9); the file names the holder (pid,
host, start time) so that a refused second writer can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from alexnet_lab.core.errors import AlexnetLabError, TrainingError
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.train.folder import clean_stale_temps

LOCK_NAME = ".lock"


class RunFolderBusy(AlexnetLabError):
    """Another process holds the run folder's lock."""


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
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"--out '{run_dir}' is a file, not a folder; choose another --out.")
    created = _make_dirs(run_dir) if fresh else []
    if not run_dir.is_dir():
        raise TrainingError(f"--resume: '{run_dir}' is not a run folder; check --out.")
    lock = RunLock(run_dir)
    lock_existed = (run_dir / LOCK_NAME).exists()
    try:
        lock.acquire()
    except BaseException:
        _remove_empty(created)  # the holder's files are not ours: only empty folders we made go
        raise
    # listed under the lock, so what a previous holder wrote counts as not ours; the lock file is
    # ours to remove when this start made it
    before = set(os.listdir(run_dir)) - (set() if lock_existed else {LOCK_NAME})
    try:
        if fresh and RunFolder(run_dir).config.exists():
            raise TrainingError(f"run folder '{run_dir}' already holds a run; pass --resume to continue it or a "
                                "new --out.")
        clean_stale_temps(run_dir)
        yield
    except BaseException:
        if fresh and not RunFolder(run_dir).has_last_checkpoint():
            _rollback(run_dir, before, created)
        raise
    finally:
        lock.release()
