"""The one folder walker: how every command lists the files of a user's folder.

A symbolic link is followed only when its target stays inside the folder being walked (for a
dataset, the class folder: a link may never lend one class's images to another), and each real
folder and file is taken once, recognised by (st_dev, st_ino): a link to `.`, `..`, an ancestor
or a sibling cannot loop or multiply images. Real entries win over links to them. Hidden names
(leading dot) are never walked. Every entry left out for another reason is counted in a
:class:`SkipReport` (with the first path of each kind), which the caller can read and which logs
one warning with the counts. Shard reading adds its own kinds (truncated members, members
without a label, ...) to the same report; those lose data, so `--strict` refuses them.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alexnet_lab.core.errors import UserInputError

log = logging.getLogger(__name__)

OUTSIDE = "link(s) leading out of the folder"
LOOP = "link(s) back to a folder they are in"
REPEAT = "second route(s) to a file or folder already taken"
DANGLING = "broken link(s)"
SPECIAL = "image name(s) on something that is not a regular file"
UNREADABLE = "unreadable folder(s)"


@dataclass(eq=False)
class SkipReport:
    """What a walk or a shard read left out: reason -> count, the first path of each reason, and
    which reasons lose data the user meant to include (refused under `--strict`)."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    losses: set[str] = field(default_factory=set)
    _warned: bool = False

    def add(self, reason: str, path: str | os.PathLike[str], loss: bool = False) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, os.fspath(path))
        if loss:
            self.losses.add(reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self, reasons: set[str] | None = None) -> str:
        """'2 broken link(s) (e.g. 'a/x.jpg'); 1 ...' over `reasons` (default: all)."""
        return "; ".join(f"{count} {reason} (e.g. {self.examples[reason]!r})" for reason, count in
                         sorted(self.counts.items()) if reasons is None or reason in reasons)

    def warn(self, what: str) -> None:
        """Log the counts once (later calls are silent), when anything was left out."""
        if self.counts and not self._warned:
            self._warned = True
            log.warning("%s: left out %s", what, self.summary())

    def check(self, strict: bool, what: str = "the data") -> None:
        """Under `strict`, refuse data that lost samples (truncated shards, unlabelled members, ...).

        Raises:
            UserInputError: strict and a data-losing reason was counted.
        """
        if strict and self.losses:
            raise UserInputError(f"--strict: {what} lost samples: {self.summary(self.losses)}. Repair or rewrite the "
                                 "data (`alexnet shards ... --force`), or drop --strict to skip them with a warning.")


def _identity(st: os.stat_result, real: str) -> tuple:
    # st_ino is 0 on file systems without inode numbers: fall back to the real path there.
    return (st.st_dev, st.st_ino) if st.st_ino else ("path", real)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk_order(path: str, top: str) -> list[tuple[int, str]]:
    """os.walk's order as a sort key: per level, files before sub-folders, each by name."""
    parts = os.path.relpath(path, top).split(os.sep)
    return [(1, part) for part in parts[:-1]] + [(0, parts[-1])]


class FolderWalk:
    """One walk, possibly over several folders (the classes of a data set, its splits): real
    folders and files already taken in any of them are not taken again."""

    def __init__(self, report: SkipReport | None = None):
        self.report = report if report is not None else SkipReport()
        self._dirs: set[tuple] = set()
        self._files: set[tuple] = set()

    def files(self, folder: str | os.PathLike[str], accept: Callable[[str], bool],
              recursive: bool = True) -> list[str]:
        """Paths (as reached, under `folder`) of the files whose name `accept`s, in os.walk order.

        Links are followed only to targets inside `folder`'s real path; folders only when
        `recursive`. Nothing is opened; one stat per link and per folder.
        """
        top = os.fspath(folder)  # paths come back under the folder as the caller named it
        top_real = os.path.realpath(top)
        try:
            top_id = _identity(os.stat(top), top_real)
        except OSError:
            self.report.add(UNREADABLE, top)
            return []
        if top_id in self._dirs:
            self.report.add(REPEAT, top)
            return []
        self._dirs.add(top_id)
        found: list[str] = []
        links: list[tuple[str, str]] = []  # (link path, real folder it is in), followed after the real tree
        self._physical(top, top_real, accept, recursive, found, links)
        physical = len(found)  # already in os.walk order
        while links:
            path, where = links.pop(0)
            self._follow(path, where, top_real, accept, recursive, found, links)
        return found if len(found) == physical else sorted(found, key=lambda p: _walk_order(p, top))

    def _physical(self, start: str, start_real: str, accept, recursive: bool, found: list[str],
                  links: list[tuple[str, str]]) -> None:
        """Walk the real (non-link) tree under `start`, queueing the links met for later."""
        stack = [(start, start_real)]
        while stack:
            folder, real = stack.pop()
            entries = self._visible(folder)
            if entries is None:
                continue
            try:
                dev = os.stat(folder).st_dev
            except OSError:
                self.report.add(UNREADABLE, folder)
                continue
            below = []
            for entry in entries:
                if entry.is_symlink():
                    links.append((entry.path, real))
                elif entry.is_dir(follow_symlinks=False):
                    if recursive and self._new_dir(entry.path, real, entry.name):
                        below.append((entry.path, os.path.join(real, entry.name)))
                elif accept(entry.name):
                    if not entry.is_file(follow_symlinks=False):
                        self.report.add(SPECIAL, entry.path)
                    elif self._new_file((dev, entry.inode()) if entry.inode() else ("path", entry.path), entry.path):
                        found.append(entry.path)
            stack.extend(reversed(below))  # the first sub-folder is walked next: os.walk's top-down order

    def _visible(self, folder: str | os.PathLike[str]) -> list[os.DirEntry] | None:
        """The entries of `folder` by name, hidden ones ('.name') left out; None (counted) when it
        cannot be listed. Both walks list a folder through this."""
        try:
            return [e for e in sorted(os.scandir(folder), key=lambda e: e.name) if not e.name.startswith(".")]
        except OSError:
            self.report.add(UNREADABLE, folder)
            return None

    def _new_dir(self, path: str, real: str, name: str) -> bool:
        try:
            ident = _identity(os.stat(path), os.path.join(real, name))
        except OSError:
            self.report.add(UNREADABLE, path)
            return False
        return self._first_time(self._dirs, ident, path)

    def _new_file(self, ident: tuple, path: str) -> bool:
        return self._first_time(self._files, ident, path)

    def _first_time(self, seen: set, ident: tuple, path: str) -> bool:
        """True the first time `ident` is met; a repeat (a hard link, a second way in) is counted."""
        if ident in seen:
            self.report.add(REPEAT, path)
            return False
        seen.add(ident)
        return True

    def _follow(self, path: str, where: str, top_real: str, accept, recursive: bool, found: list[str],
                links: list[tuple[str, str]]) -> None:
        """Take one link: a file or folder inside the walked folder not taken yet, else count why not."""
        name = os.path.basename(path)
        try:
            st = os.stat(path)
        except OSError:  # missing target, or a chain of links that loops
            if recursive or accept(name):
                self.report.add(DANGLING, path)
            return
        target = os.path.realpath(path)
        is_dir = stat.S_ISDIR(st.st_mode)
        if (is_dir and not recursive) or (not is_dir and not accept(name)):
            return  # not something this walk lists, whatever it points at
        if not _inside(target, top_real):
            self.report.add(OUTSIDE, path)
        elif not is_dir:
            if not stat.S_ISREG(st.st_mode):
                self.report.add(SPECIAL, path)
            elif self._new_file(_identity(st, target), path):
                found.append(path)
        elif _identity(st, target) in self._dirs:
            self.report.add(LOOP if _inside(where, target) else REPEAT, path)
        else:
            self._dirs.add(_identity(st, target))
            self._physical(path, target, accept, recursive, found, links)

    def subfolders(self, folder: str | os.PathLike[str]) -> list[Path]:
        """The visible folders directly in `folder` (classes, splits), by name, each a distinct real
        folder inside `folder`: a link to the folder itself, an ancestor, outside it, or to a folder
        overlapping another one listed is counted and left out (real folders win over links)."""
        top = Path(folder).absolute()
        top_real = os.path.realpath(top)
        real_dirs, linked = [], []
        for entry in self._visible(top) or []:
            if entry.is_symlink():
                linked.append(entry)
            elif entry.is_dir(follow_symlinks=False):
                real_dirs.append((entry.name, os.path.join(top_real, entry.name)))
        taken = list(real_dirs)
        for entry in linked:
            target = os.path.realpath(entry.path)
            if not os.path.exists(entry.path):
                self.report.add(DANGLING, entry.path)
            elif not os.path.isdir(entry.path):
                continue
            elif _inside(top_real, target):
                self.report.add(LOOP, entry.path)
            elif not _inside(target, top_real):
                self.report.add(OUTSIDE, entry.path)
            elif any(_inside(target, real) or _inside(real, target) for _, real in taken):
                self.report.add(REPEAT, entry.path)
            else:
                taken.append((entry.name, target))
        return [top / name for name, _ in sorted(taken)]


def list_files(folder: str | os.PathLike[str], accept: Callable[[str], bool], recursive: bool = True) -> list[str]:
    """:meth:`FolderWalk.files` of one folder, with its one warning when anything was left out."""
    walk = FolderWalk()
    found = walk.files(folder, accept, recursive)
    walk.report.warn(f"'{os.fspath(folder)}'")
    return found
