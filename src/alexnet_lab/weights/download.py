"""Download registry weights into a local cache, checked by sha256 (stdlib urllib only).

Cache folder: ``$ALEXNET_LAB_CACHE`` if set, else the platform cache folder plus
``alexnet-lab`` (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
``%LOCALAPPDATA%`` on Windows). A file placed there by hand under the entry's file name is
used like a downloaded one. With ``ALEXNET_LAB_OFFLINE=1`` the network is never touched.

How a file is checked, on download and on every later use:
  * the entry has a full sha256: the file's digest must equal it;
  * it has only a prefix (torchvision's file names carry 8 hex digits): the digest must start with it;
  * it has neither (``bvlc``: no trusted hash is published): trust on first use — the digest of the
    first download (or of the first file found in the cache) is stored beside it as
    ``<filename>.sha256`` and every later use is checked against that record. Delete both files
    to start over.
A download goes to a temporary file in the cache folder and is renamed into place only once it
is complete and verified, so the final path never holds a partial or unverified file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.fileio import atomic_path, sha256_file
from alexnet_lab.core.version import __version__
from alexnet_lab.weights.registry import WeightEntry, get_entry

log = logging.getLogger(__name__)

CACHE_ENV = "ALEXNET_LAB_CACHE"
OFFLINE_ENV = "ALEXNET_LAB_OFFLINE"
CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteFile:
    """Any file fetched into the cache (a data set archive, say): what `fetch` needs of an entry.
    Registry WeightEntry records have the same attributes."""

    name: str
    url: str
    filename: str
    sha256: str = ""
    size: int = 0
    size_exact: bool = True

    @property
    def expected_hash(self) -> str:
        return self.sha256


class DownloadError(AlexnetLabError):
    """A weight file that could not be downloaded, or whose bytes fail the hash check."""


def default_cache_dir() -> Path:
    """``$ALEXNET_LAB_CACHE``, else the platform's per-user cache folder + ``alexnet-lab``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "alexnet-lab"


def cache_path(entry: WeightEntry, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where `entry`'s file lives in the cache (whether or not it is there yet)."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / entry.filename


def hash_record_path(path: Path) -> Path:
    """The trust-on-first-use record beside a cached file: ``<filename>.sha256``."""
    return path.with_name(path.name + ".sha256")


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _read_record(path: Path) -> str:
    """The digest stored for `path`, or '' when there is no record."""
    record = hash_record_path(path)
    try:
        text = record.read_text("ascii").split()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise DownloadError(
            f"cannot read the hash record {record} ({exc}); delete it and {path} to download afresh."
        ) from None
    if not text or not _SHA256.fullmatch(text[0]):
        raise DownloadError(f"the hash record {record} is damaged (expected a sha256 hex digest); delete it and {path}.")
    return text[0]


def _write_record(path: Path, digest: str) -> None:
    with atomic_path(hash_record_path(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n", "ascii")  # the `sha256sum -c` format
    log.info("recorded sha256 %s for %s (no published hash; later uses are checked against it)", digest, path)


def _expected(entry: WeightEntry, path: Path) -> tuple[str, str]:
    """(expected digest or prefix, where it comes from); ('', '') when nothing is known yet."""
    if entry.expected_hash:
        return entry.expected_hash, f"the '{entry.name}' registry entry"
    recorded = _read_record(path)
    return recorded, (f"{hash_record_path(path)}, recorded at its first download" if recorded else "")


def _verify_cached(entry: WeightEntry, path: Path) -> None:
    """Check a file already in the cache; remove it and raise when its digest is wrong."""
    digest = sha256_file(path)
    expected, origin = _expected(entry, path)
    if not expected:  # no hash known and none recorded: trust this file from now on
        _write_record(path, digest)
    elif not digest.startswith(expected):
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"the cached file {path} has sha256 {digest}, expected {expected} (from {origin}); it was "
            "removed as corrupt or tampered with — run again to download it afresh."
        )


def _failed(url: str, reason: object, target: Path) -> DownloadError:
    return DownloadError(
        f"could not download {url} ({reason}); check the connection, or download the file by hand "
        f"and save it as {target}."
    )


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    """A tqdm bar on stderr when asked for, stderr is a terminal and tqdm is installed."""
    if enabled and sys.stderr.isatty():
        try:
            from tqdm import tqdm  # optional: the core needs only the stdlib
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)
    return _NoBar()


def _stream(url: str, tmp: Path, target: Path, progress: bool, timeout: float) -> tuple[str, int]:
    """Download `url` into `tmp`; returns (sha256 hex, bytes received). Raises DownloadError."""
    digest, received, length = hashlib.sha256(), 0, None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"alexnet-lab/{__version__}"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as fh:
            length = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(length, target.name, progress) as bar:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    except urllib.error.HTTPError as exc:
        raise _failed(url, f"HTTP {exc.code} {exc.reason}", target) from None
    except urllib.error.URLError as exc:
        raise _failed(url, exc.reason, target) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # resets, timeouts, bad URLs
        raise _failed(url, f"{type(exc).__name__}: {exc}", target) from None
    if length is not None and received != length:
        # http.client returns a short body silently when the server closes early
        raise _failed(url, f"the transfer stopped after {received} of {length} bytes", target)
    return digest.hexdigest(), received


def _check_download(entry: WeightEntry, path: Path, url: str, digest: str, received: int) -> None:
    """Raise when freshly downloaded bytes fail the size or hash check."""
    if entry.size and entry.size_exact and received != entry.size:
        raise _failed(url, f"received {received} bytes, expected {entry.size}", path)
    if entry.size and not entry.size_exact and abs(received - entry.size) > entry.size // 100:
        log.warning("%s: %d bytes, about %d expected; keeping it (the size is only approximate)", url, received, entry.size)
    expected, origin = _expected(entry, path)
    if expected and not digest.startswith(expected):
        raise DownloadError(
            f"the file downloaded from {url} has sha256 {digest}, expected {expected} (from {origin}); it was "
            "deleted. Try again later; if it persists, the server's file has changed or is being tampered with."
        )


def _download_verified(entry: WeightEntry, target: Path, url: str, progress: bool, timeout: float) -> None:
    """Download into a temporary file beside `target`; rename it into place only once verified."""
    try:
        with atomic_path(target) as tmp:  # the final path only ever holds a complete, verified file
            log.info("downloading %s to %s", url, target)
            digest, received = _stream(url, tmp, target, progress, timeout)
            _check_download(entry, target, url, digest, received)
    except OSError as exc:  # atomic_path names `target` in what it raises about the cache folder
        if exc.filename != str(target):
            raise
        raise DownloadError(
            f"cannot write to the cache folder {target.parent} ({exc}); set {CACHE_ENV} to a writable folder."
        ) from None
    if not entry.expected_hash and not hash_record_path(target).exists():
        _write_record(target, digest)  # trust on first use (see the module docstring)


def fetch(
    entry: WeightEntry | RemoteFile | str,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the local path of a weight file, downloading and verifying it when needed.

    Args:
        entry: a registry entry, a registry name such as 'torchvision' or 'bvlc', or a RemoteFile.
        cache_dir: folder to cache in; default :func:`default_cache_dir`.
        progress: show a progress bar on stderr (only when it is a terminal and tqdm is installed).
        url: download from here instead of `entry.url` (mirrors, tests).
        timeout: seconds to wait for the server to answer.

    Returns:
        The cached file, ``<cache_dir>/<entry.filename>``. A cached file is re-hashed on every
        call; when it verifies, the network is not touched.

    Raises:
        DownloadError: offline, network or HTTP failure, an incomplete transfer, or a hash
            mismatch (the bad file is removed); the message names the URL and the path where a
            manually downloaded file can be put.
        UserInputError: `entry` is a string that is not a registry name.
    """
    entry = get_entry(entry) if isinstance(entry, str) else entry
    target, source = cache_path(entry, cache_dir), url or entry.url
    if target.is_file():
        _verify_cached(entry, target)
        return target
    if is_offline():
        raise DownloadError(
            f"{OFFLINE_ENV} is set and {target} is not in the cache; download {source} by hand and save "
            f"it there, or unset {OFFLINE_ENV}."
        )
    _download_verified(entry, target, source, progress, timeout)
    return target
