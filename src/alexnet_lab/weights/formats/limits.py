"""Size limits checked before a weight container is decoded, so a hostile file is refused cheaply.

A zip (`.keras`, torch's `.pth`, `.npz`) declares each member's decoded size in its central
directory, and an HDF5 file declares each dataset's shape; both can claim gigabytes that a few
kilobytes decode to (a deflate bomb, or an HDF5 dataset of unallocated chunks that reads as its
fill value). Two limits are checked on those declarations, before any member or dataset is read:

* the architecture's: the parameters of the variant and class count the file says it holds,
  at up to 8 bytes each (float64), plus OVERHEAD for configs and container bookkeeping;
* the ratio's: weights are near-incompressible floats (deflate gains ~10%), so a file that
  decodes to more than MAX_RATIO times its own size is not a weight file.

Python's zipfile never inflates a member past its declared size, so checking the declaration
bounds what the reader can allocate.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from alexnet_lab.core.errors import WeightFormatError

OVERHEAD = 16 << 20  # configs, HDF5 headers, zip records: generous for AlexNet
MAX_RATIO = 8  # decoded bytes per file byte; deflated float weights reach ~1.1
MIN_RATIO_FLOOR = 64 << 20  # tiny files may hold small compressible configs: never refuse below this
MAX_MEMBERS = 10_000  # a .keras archive holds a handful, torch's .pth one per tensor
MAX_SMALL_MEMBER = 8 << 20  # metadata and config members (alexnet_lab.json, config.json)


def expected_bytes(variant: str, num_classes: int) -> int:
    """The most a file of this variant and class count can legitimately decode to."""
    from alexnet_lab.core.spec import get_arch

    return get_arch(variant).param_count(num_classes) * 8 + OVERHEAD


def _refuse(path: str | os.PathLike[str], declared: int, limit: int, why: str) -> WeightFormatError:
    return WeightFormatError(f"{os.fspath(path)} declares {declared:,} bytes of content, more than the {limit:,} "
                             f"{why}; refused before decoding (a corrupt or hostile file).")


def check_declared(path: str | os.PathLike[str], declared: int, file_size: int, arch_limit: int | None = None) -> None:
    """Refuse `declared` decoded bytes beyond the ratio limit or the architecture's limit."""
    ratio_limit = max(MAX_RATIO * file_size, MIN_RATIO_FLOOR)
    if declared > ratio_limit:
        raise _refuse(path, declared, ratio_limit, f"a {file_size:,}-byte weight file can hold ({MAX_RATIO}x its size)")
    if arch_limit is not None and declared > arch_limit:
        raise _refuse(path, declared, arch_limit, "its architecture needs")


def zip_members(path: str | os.PathLike[str]) -> list[zipfile.ZipInfo]:
    """The central directory of a zip file, refusing one with absurdly many members."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise WeightFormatError(f"{os.fspath(path)} is not a readable zip archive ({exc}); re-create it.") from None
    if len(members) > MAX_MEMBERS:
        raise WeightFormatError(f"{os.fspath(path)} holds {len(members):,} zip members (at most {MAX_MEMBERS:,} "
                                "expected); refused.")
    return members


def check_zip(path: str | os.PathLike[str], arch_limit: int | None = None,
              small_members: Iterable[str] = ()) -> list[zipfile.ZipInfo]:
    """Refuse a zip whose members declare more than the limits allow; returns the members.

    Args:
        path: the archive.
        arch_limit: the architecture's limit in bytes (expected_bytes), when known.
        small_members: names of metadata/config members, each held to MAX_SMALL_MEMBER.
    """
    members = zip_members(path)
    small = set(small_members)
    for info in members:
        if info.filename in small and info.file_size > MAX_SMALL_MEMBER:
            raise _refuse(path, info.file_size, MAX_SMALL_MEMBER, f"a '{info.filename}' member may hold")
    check_declared(path, sum(info.file_size for info in members), os.path.getsize(path), arch_limit)
    return members


def read_small_member(path: str | os.PathLike[str], name: str) -> bytes | None:
    """A metadata member's bytes (None when absent), its declared size checked first."""
    members = {info.filename: info for info in zip_members(path)}
    if name not in members:
        return None
    if members[name].file_size > MAX_SMALL_MEMBER:
        raise _refuse(path, members[name].file_size, MAX_SMALL_MEMBER, f"a '{name}' member may hold")
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError, EOFError, zlib.error from a damaged member
        raise WeightFormatError(f"{os.fspath(path)}: cannot read its '{name}' member ({exc}); re-create the file.") from None


def h5_declared_bytes(source: str | os.PathLike[str] | object) -> int:
    """Sum of the declared sizes (shape x itemsize) of every dataset in an HDF5 file, read from
    its headers only (h5py reads no dataset data for this)."""
    import h5py

    total = 0

    def visit(_name: str, item: object) -> None:
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += int(item.size or 0) * item.dtype.itemsize

    try:
        with h5py.File(source, "r") as fh:
            fh.visititems(visit)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        where = os.fspath(source) if isinstance(source, (str, Path)) else "the archive's weights"
        raise WeightFormatError(f"{where} is not a readable HDF5 file ({str(exc).splitlines()[0] if str(exc) else exc}); "
                                "re-create it.") from None
    return total


def _arch_limit(raw: bytes | str | None) -> int | None:
    """expected_bytes for the variant and classes the project metadata names (None without it)."""
    import json

    from alexnet_lab.core.bundle import ModelMeta

    if not raw:
        return None
    try:
        meta = ModelMeta.from_metadata(json.loads(raw))
        return expected_bytes(meta.variant, meta.num_classes)
    except (WeightFormatError, ValueError, TypeError):
        return None  # the reader reports damaged metadata in its own words


def check_keras_archive(path: str | os.PathLike[str], meta_member: str, weights_member: str = "model.weights.h5") -> None:
    """Refuse a `.keras` zip whose members, or the datasets of its weights member, declare more
    than the limits allow (see the module docstring); nothing large is read."""
    arch_limit = _arch_limit(read_small_member(path, meta_member))
    members = check_zip(path, arch_limit, small_members=(meta_member, "config.json", "metadata.json"))
    info = next((m for m in members if m.filename == weights_member), None)
    if info is None:
        return
    if info.compress_type == zipfile.ZIP_STORED:  # what Keras writes: read the bytes in place
        with open(path, "rb") as fh:
            declared = h5_declared_bytes(_StoredMember(fh, info))
    else:  # a deflated member: zipfile re-inflates from the start on every backward seek (slow, bounded)
        with zipfile.ZipFile(path) as archive, archive.open(info) as member:
            declared = h5_declared_bytes(member)
    check_declared(f"{os.fspath(path)}:{weights_member}", declared, info.file_size, arch_limit)


class _StoredMember(io.RawIOBase):
    """A read-only, seekable window onto an uncompressed zip member, for h5py: zipfile's own
    member file re-reads from the member's start on every backward seek, and h5py seeks a lot."""

    def __init__(self, fh, info: zipfile.ZipInfo) -> None:
        super().__init__()
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise WeightFormatError(f"{fh.name}: the zip entry of '{info.filename}' is damaged; re-create the file.")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        self._fh, self._start, self._size, self._pos = fh, info.header_offset + 30 + name_len + extra_len, info.file_size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:count])
        self._pos += got
        return got


def check_h5(path: str | os.PathLike[str], meta_attr: str) -> None:
    """Refuse an HDF5 weight file whose datasets declare more than the limits allow."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get(meta_attr)
    except (OSError, ValueError) as exc:
        raise WeightFormatError(f"{os.fspath(path)} is not a readable HDF5 file ({exc}); re-create it.") from None
    check_declared(path, h5_declared_bytes(path), os.path.getsize(path), _arch_limit(raw))


def check_pth(path: str | os.PathLike[str]) -> None:
    """Refuse a zip-format `.pth` whose members declare more than MAX_RATIO x its size."""
    if zipfile.is_zipfile(path):
        check_zip(path)
