"""Small file helpers: atomic writes and hashing (stdlib only)."""

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

    A crash or exception leaves any existing file at `path` untouched and no partial file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, target)
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


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike[str], sources: Iterable[str | os.PathLike[str]] = (), force: bool = False,
                 flag: str = "--force") -> None:
    """Refuse to write `path` when that would destroy something the user did not ask to replace.

    An output that is one of the inputs (the same file through any symlink or hard link) is
    always refused: the input would be gone before it was fully read. An existing file or
    folder is replaced only with `force`, except an empty regular file, which holds nothing to lose
    (the file a caller made with mkstemp or NamedTemporaryFile to receive the output).

    Raises:
        UserInputError: the output is an input, or exists and `force` is off.
    """
    from alexnet_lab.core.errors import UserInputError

    out = Path(path)
    for source in sources:
        if _same_path(out, Path(source)):
            raise UserInputError(f"the output '{out}' is the input '{os.fspath(source)}'; write to another file name.")
    if (out.exists() or out.is_symlink()) and not force and not _empty_file(out):
        kind = "folder" if out.is_dir() else "file"
        raise UserInputError(f"the output {kind} '{out}' already exists; pass {flag} to replace it, or choose "
                             "another name.")


def _empty_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file() and path.stat().st_size == 0
