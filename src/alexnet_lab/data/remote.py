"""Remote shard sources: `http(s)://`, `s3://`, `gs://` URLs (through fsspec) and `pipe:COMMAND`
(WebDataset's convention: the tar stream is the command's stdout), opened as forward-only streams.

A source is never downloaded whole, to disk or to memory: it is read as a byte stream, in order,
through :class:`Stream`. Opening a URL that cannot be reached, a 404, a stalled server (no byte
for ``ALEXNET_LAB_REMOTE_TIMEOUT`` seconds) and a `pipe:` command that exits non-zero are one-line
:class:`~alexnet_lab.core.errors.UserInputError` messages naming the source; a stream that breaks
after its first byte ends early instead, which the tar reader sees as a truncated shard. Every
message names a source through :func:`redact`, so `user:password@` in a URL is never printed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections import deque

from alexnet_lab.core.errors import UserInputError

log = logging.getLogger(__name__)

URL_SCHEMES = ("http://", "https://", "s3://", "gs://")
PIPE = "pipe:"
EXTRAS = {"s3": "s3fs", "gs": "gcsfs"}  # scheme -> the fsspec backend that is an optional extra
TIMEOUT_ENV = "ALEXNET_LAB_REMOTE_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds to connect, and between two reads, before a server counts as stalled
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_BRACES = re.compile(r"\{(?P<first>\d+)\.\.(?P<last>\d+)\}")
MAX_EXPANDED = 1_000_000  # shards one brace pattern may name: more is a typo, not a data set


def is_remote(source: str) -> bool:
    """True for a URL this module reads or a `pipe:` command."""
    return source.startswith(PIPE) or source.lower().startswith(URL_SCHEMES)


def redact(text: str) -> str:
    """`text` with every `scheme://user:password@` reduced to `scheme://***@`."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def expand_braces(source: str) -> list[str]:
    """WebDataset's brace ranges: `shard-{000..009}.tar` -> shard-000.tar ... shard-009.tar (zero
    padding kept from the first bound; several ranges multiply).

    Raises:
        UserInputError: a range that runs backwards or names more than MAX_EXPANDED sources.
    """
    found = _BRACES.search(source)
    if found is None:
        return [source]
    first, last = int(found["first"]), int(found["last"])
    if last < first or last - first >= MAX_EXPANDED:
        raise UserInputError(f"bad brace range '{found[0]}' in '{redact(source)}'; expected {{FIRST..LAST}} with "
                             f"FIRST <= LAST, at most {MAX_EXPANDED} shards.")
    width = len(found["first"])
    head, tail = source[: found.start()], source[found.end():]
    return [name for i in range(first, last + 1) for name in expand_braces(f"{head}{i:0{width}d}{tail}")]


def timeout() -> float:
    """Seconds a remote source may stay silent (``ALEXNET_LAB_REMOTE_TIMEOUT``, default 60)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserInputError(f"{TIMEOUT_ENV} must be a number of seconds above 0; received '{raw}'.")
    return value


def _filesystem(url: str):
    """The fsspec filesystem for `url`, or a one-line error naming the package to install."""
    scheme = url.split("://", 1)[0].lower()
    package = EXTRAS.get(scheme, "aiohttp")
    try:
        import fsspec

        if scheme in ("http", "https"):
            import aiohttp

            limit = timeout()
            client = {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=limit, sock_read=limit)}
            return fsspec.filesystem("http", client_kwargs=client, skip_instance_cache=True)
        return fsspec.filesystem(scheme, skip_instance_cache=True)
    except ImportError:
        extra = f" (or `pip install alexnet-lab[{scheme}]`)" if scheme in EXTRAS else ""
        raise UserInputError(f"reading {scheme}:// shards needs {package}; install it with "
                             f"`pip install {package}`{extra}.") from None


def _cause(exc: BaseException) -> str:
    """A short, credential-free reason for a failed read."""
    if isinstance(exc, FileNotFoundError):
        return "not found (404)"
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"HTTP status {status}"
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return f"no answer within {timeout():g} s ({TIMEOUT_ENV})"
    text = str(getattr(exc, "os_error", None) or exc) or type(exc).__name__
    return redact(text.splitlines()[0])[:200]


def _received(file) -> bytes:
    """The bytes an HTTP response had received but not handed out when its connection broke:
    aiohttp's StreamReader keeps them yet raises before returning them, and a cut local file
    would have given them, so they are read from its buffer (b"" where there is none)."""
    content = getattr(getattr(file, "r", None), "content", None)
    chunks = getattr(content, "_buffer", None)
    if not chunks:
        return b""
    data = b"".join(chunks)[getattr(content, "_buffer_offset", 0):]
    chunks.clear()
    return data


class Stream:
    """A forward-only byte stream of one source, read in order and never stored whole.

    Reads after the first byte that fail (the connection closed early, a stall past the timeout)
    end the stream instead of raising: the tar reader then finds the shard truncated, as it would a
    cut local file. `broken` keeps the reason. `tail` keeps the last bytes served, so the reader
    can check the archive's end marker after tarfile has stopped.
    """

    TAIL = 4 * 10240  # two of tarfile's records: the end marker always lies within what it read last

    def __init__(self, source: str):
        self.source, self.name = source, redact(source)
        self.served, self.broken, self._rest = 0, "", b""
        self.tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._process: subprocess.Popen | None = None
        self._file = self._open_pipe() if source.startswith(PIPE) else self._open_url()

    def _open_url(self):
        fs = _filesystem(self.source)
        try:
            if self.source.lower().startswith("http"):
                # block_size=0: one streamed GET, never range requests. A size skips fsspec's HEAD
                # request, whose failures (refused, timed out) it would all report as "not found".
                return fs.open(self.source, "rb", block_size=0, size=1)
            return fs.open(self.source, "rb")
        except Exception as exc:  # fsspec backends raise their own types; all are one line here
            raise UserInputError(f"cannot read shard '{self.name}': {_cause(exc)}; check the URL, that the server is "
                                 "up and that the shard exists.") from None

    def _open_pipe(self):
        command = self.source[len(PIPE):]
        if not command.strip():
            raise UserInputError("a pipe: source needs a command, as in 'pipe:curl -s URL'; received an empty one.")
        self._process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        return self._process.stdout

    def read(self, size: int = -1) -> bytes:
        if self.broken:
            data, self._rest = (self._rest, b"") if size < 0 else (self._rest[:size], self._rest[size:])
            self._keep(data)
            return data
        try:
            data = self._file.read(size)
        except Exception as exc:  # any failure after opening ends the stream (see the class)
            self.broken = _cause(exc)
            self._rest = _received(self._file)
            log.debug("stream %s broke after %d bytes: %s", self.name, self.served + len(self._rest), self.broken)
            return self.read(size)
        if not data:
            self._check_exit()
        self._keep(data)
        return data

    def _keep(self, data: bytes) -> None:
        self.served += len(data)
        self.tail.append(data)
        self._tail_bytes += len(data)
        while self._tail_bytes - len(self.tail[0]) >= self.TAIL:
            self._tail_bytes -= len(self.tail.popleft())

    def block_at(self, offset: int, size: int) -> bytes | None:
        """The `size` bytes served from `offset`, if they are still in the tail (None if not all served)."""
        start = self.served - self._tail_bytes
        if offset < start or offset + size > self.served:
            return None
        joined = b"".join(self.tail)
        return joined[offset - start : offset - start + size]

    def _check_exit(self) -> None:
        """At the end of a pipe: a non-zero exit status is an error, even after some output."""
        if self._process is None or self._process.poll() is not None and self._process.returncode == 0:
            return
        status = self._process.wait()
        if status != 0:
            raise UserInputError(f"shard command '{self.name}' exited with status {status}; run it alone to see why.")

    def finish(self) -> None:
        """After a whole read: a pipe's command runs to its end, and a non-zero exit is an error."""
        while self._process is not None and self.read(1 << 16):
            pass

    def close(self) -> None:
        """Stop reading: a pipe's command is ended (its exit status then does not count)."""
        try:
            self._file.close()
        except Exception:  # closing a broken connection may fail; nothing is left to read
            pass
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
