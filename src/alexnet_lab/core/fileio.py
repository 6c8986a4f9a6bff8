"""Small file helpers (stdlib only): atomic writes, hashing, and the one output policy (check_output)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    A crash or exception leaves any existing file at `path` untouched and no partial file. An
    OSError about the temporary file (permissions, a full or read-only disk) is raised as one about
    `path`, the name the user gave.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename) == tmp_path:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def regular_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path` after resolving symlinks, refused unless it is a regular file.

    Devices (/dev/zero), FIFOs and sockets never end, or block forever, when read; a folder is
    not a file. Checking the resolved target's stat before opening means nothing is ever read
    from them (a symlink named `x.keras` pointing at /dev/zero included).

    Raises:
        UserInputError: the path is missing or is not a regular file.
    """
    import stat

    from alexnet_lab.core.errors import UserInputError

    try:
        resolved = Path(path).resolve(strict=True)
        mode = resolved.stat().st_mode
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise UserInputError(f"cannot open {what} '{os.fspath(path)}' ({getattr(exc, 'strerror', None) or exc}); "
                             "check the path.") from None
    if stat.S_ISDIR(mode):
        raise UserInputError(f"{what} '{os.fspath(path)}' is a folder; pass a file.")
    if not stat.S_ISREG(mode):
        device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if device else "not a regular file"
        raise UserInputError(f"{what} '{os.fspath(path)}' is {kind} (it resolves to '{resolved}'); pass a regular file.")
    return resolved


OUTPUT_KINDS = ("file", "folder")


def check_output(path: str | os.PathLike[str], sources: Iterable[str | os.PathLike[str]] = (), force: bool = False,
                 flag: str = "--force", *, kind: str = "file", owned: Iterable[str] | None = None) -> list[Path]:
    """The one output policy: refuse to write `path` when that would destroy what nobody asked to replace.

    Every command that writes calls this before it reads a large input or imports a framework.

    - The output never is, nor lies inside, one of the `sources` (the command's inputs: weight
      files, data and run folders), nor holds one inside a folder it replaces, even with `force`;
      symlinks and hard links are resolved.
    - `kind` says what the output is: "file", or "folder" (the command writes entries into it). A
      folder where a file is expected, the reverse, or a file where a parent folder must be, is
      refused with one line.
    - What exists is replaced only with `force`: a file output (except an empty regular file, which
      holds nothing to lose: the file a caller made with mkstemp to receive the output); for a
      folder, the entries in `owned` (names relative to it, a trailing '/' marking a folder, a glob
      pattern such as 'shard-*.tar' standing for what it matches), the command's own files:
      anything else in the folder is never touched. `owned=None` makes the
      whole folder the output (an export's SavedModel): a non-empty one needs `force`.

    Returns:
        The existing outputs that `force` allows replacing (empty when nothing is in the way).

    Raises:
        UserInputError: the output is or is inside an input, has the wrong kind, or exists and
            `force` is off.
    """
    from alexnet_lab.core.errors import UserInputError

    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}; received {kind!r}")
    out = Path(path)
    targets = _targets(out, kind, owned)
    replaced = targets if kind == "file" or owned is None else targets[1:]  # a folder written into stays
    _refuse_inputs(targets, replaced, [Path(s) for s in sources])
    for target, target_kind in targets:
        _refuse_kind(target, target_kind)
    existing = [t for t, target_kind in replaced if _holds_something(t, target_kind)]
    if existing and not force:
        if kind == "file":
            message = f"the output file '{out}' already exists; pass {flag} to replace it, or choose another name."
        elif owned is None:
            message = f"the output folder '{out}' already exists and is not empty; pass {flag} to replace it, or " \
                      "choose another name."
        else:
            names = ", ".join(str(t.relative_to(out)) for t in existing[:3])
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            message = f"'{out}' already holds this command's earlier output ({names}{more}); pass {flag} to replace " \
                      "it (other files there are left alone), or choose another folder."
        raise UserInputError(message)
    return existing


def _targets(out: Path, kind: str, owned: Iterable[str] | None) -> list[tuple[Path, str]]:
    """(path, kind) of everything the command may replace; a glob pattern stands for its matches."""
    if kind == "file" or owned is None:
        return [(out, kind)]
    targets = [(out, "folder")]
    for name in owned:
        entry_kind, pattern = ("folder" if name.endswith("/") else "file"), name.rstrip("/")
        if any(c in pattern for c in "*?["):
            targets += [(match, entry_kind) for match in (sorted(out.glob(pattern)) if out.is_dir() else [])]
        else:
            targets.append((out / pattern, entry_kind))
    return targets


def _refuse_inputs(targets: list[tuple[Path, str]], replaced: list[tuple[Path, str]], sources: list[Path]) -> None:
    """No output is an input or inside an input folder; no folder the command replaces holds an input."""
    from alexnet_lab.core.errors import UserInputError

    for source in sources:
        real_source = _real(source)
        for target, _ in targets:
            if _same_path(target, source):
                raise UserInputError(f"the output '{target}' is the input '{source}'; write to another name.")
            if source.is_dir() and _real(target).is_relative_to(real_source):
                raise UserInputError(f"the output '{target}' is inside the input folder '{source}'; write outside it "
                                     "(what is written there would become part of the input).")
        for target, kind in replaced:
            if kind == "folder" and real_source.is_relative_to(_real(target)):
                raise UserInputError(f"the output folder '{target}' holds the input '{source}', which writing it "
                                     "would replace; choose another output.")


def _refuse_kind(target: Path, kind: str) -> None:
    from alexnet_lab.core.errors import UserInputError

    if kind == "file" and target.is_dir():
        raise UserInputError(f"the output '{target}' is a folder where a file is expected; pass a file name.")
    if kind == "folder" and (target.exists() or target.is_symlink()) and not target.is_dir():
        raise UserInputError(f"the output '{target}' is a file where a folder is expected; pass a folder name.")
    parent = next((p for p in target.parents if p.exists() or p.is_symlink()), None)
    if parent is not None and not parent.is_dir():
        raise UserInputError(f"cannot write '{target}': '{parent}' is a file, not a folder; choose another path.")


def _holds_something(target: Path, kind: str) -> bool:
    if kind == "folder":
        return target.is_dir() and any(target.iterdir())
    return (target.exists() or target.is_symlink()) and not _empty_file(target)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return _real(a) == _real(b)


def _empty_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file() and path.stat().st_size == 0
