"""WebDataset-style tar shards: `.tar` files of `KEY.jpg` + `KEY.cls` pairs, read and written.

A shard folder holds `*.tar` files, `classes.txt` (one class name a line; label i is line i) and
`manifest.json` (see :mod:`~alexnet_lab.data.shard_manifest`), or `train/`, `val/`, `test/`
folders of them. Reading indexes every member's byte offset once (tar headers only), so a sample
is addressed by a virtual path `SHARD.tar::OFFSET+SIZE/NAME` and read with one seek: the sampler
that splits an epoch over DDP ranks and loader workers works for shards exactly as for files.

Reading never trusts a tar: offsets must only grow (no loop), a member must end inside the file,
the archive must end with its end marker, a label is at most a few bytes. A truncated archive, an
image without a `.cls`, a `.cls` without an image, a duplicate key or a bad label loses samples:
each is counted in the index's :class:`~alexnet_lab.data.walk.SkipReport` (one warning with the
counts; `--strict` refuses them). Members that are neither are counted and ignored.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.data import shard_manifest as manifests
from alexnet_lab.data.images import IMAGE_EXTENSIONS, ImageReadError, read_image_rgb
from alexnet_lab.data.index import DatasetIndex, Sample
from alexnet_lab.data.remote import redact
from alexnet_lab.data.shard_manifest import CLASSES_FILE
from alexnet_lab.data.walk import FolderWalk, SkipReport

log = logging.getLogger(__name__)

MEMBER = re.compile(r"^(?P<tar>.*?\.tar)::(?P<offset>\d+)\+(?P<size>\d+)/(?P<name>.+)$", re.DOTALL)
SHARD_SPLITS = ("train", "val", "test")
SHARD_NAME = re.compile(r"shard-\d{6}\.tar")  # what write_shards names its files
MAX_LABEL_BYTES = 32  # a .cls holds a decimal class index; anything longer is not one
MAX_CLASSES = 100_000  # labels numbered without classes.txt: a bigger one is damage, not a class

TRUNCATED = "truncated or damaged shard(s)"
UNLABELLED = "image(s) without a .cls label"
ORPHAN = "label(s) without an image"
DUPLICATE = "duplicate key(s)"
BAD_LABEL = "bad label(s)"
IGNORED = "member(s) neither an image nor a .cls (ignored)"


def is_member_path(path: str) -> bool:
    """True for a virtual `SHARD.tar::OFFSET+SIZE/NAME` sample path."""
    return ".tar::" in path and MEMBER.match(path) is not None


def read_member(path: str, min_side: int | None = None) -> np.ndarray:
    """uint8 RGB pixels of a tar member named by its virtual path (one seek, one read)."""
    found = MEMBER.match(path)
    try:
        with open(found["tar"], "rb") as fh:
            fh.seek(int(found["offset"]))
            content = fh.read(int(found["size"]))
    except OSError as exc:
        raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}; check the shard file.") from None
    return read_image_rgb(path, content=content, min_side=min_side)


def _tars(folder: Path, walk: FolderWalk | None = None) -> list[str]:
    """The `*.tar` files directly in `folder`, by name, through the one folder walker."""
    return (walk or FolderWalk()).files(folder, lambda name: name.endswith(".tar"), recursive=False)


def is_shard_folder(folder: Path) -> bool:
    """A folder of `*.tar` shards, directly or in train/ val/ test/."""
    return bool(_tars(folder)) or any((folder / split).is_dir() and _tars(folder / split) for split in SHARD_SPLITS)


def _class_names(folder: Path, labels: list[int]) -> tuple[str, ...]:
    for place in (folder, folder.parent):
        if (place / CLASSES_FILE).is_file():
            return tuple(line.strip() for line in (place / CLASSES_FILE).read_text().splitlines() if line.strip())
    return tuple(str(i) for i in range(min(max(labels, default=-1) + 1, MAX_CLASSES)))


def parse_label(content: bytes | None) -> int | None:
    """The class index a `.cls` member holds, or None when it holds none (or was too long to read)."""
    if content is None or len(content) > MAX_LABEL_BYTES:
        return None
    try:
        return int(content.decode("ascii").strip())
    except (ValueError, UnicodeDecodeError):
        return None


def _label(tar: tarfile.TarFile, member: tarfile.TarInfo) -> int | None:
    return parse_label(tar.extractfile(member).read() if member.size <= MAX_LABEL_BYTES else None)


def _members(tar_path: Path, report: SkipReport):
    """Yield the file members of one shard, stopping (and counting it) where the archive is damaged."""
    size = os.path.getsize(tar_path)
    try:
        tar = tarfile.open(tar_path, "r:")
    except tarfile.ReadError as exc:
        if size >= tarfile.BLOCKSIZE and ("end of data" in str(exc) or "truncated" in str(exc)):
            report.add(TRUNCATED, tar_path, loss=True)  # cut inside its first member
            return
        raise UserInputError(f"cannot read shard '{tar_path}' ({exc}); expected an uncompressed tar of KEY.jpg + "
                             "KEY.cls pairs, as `alexnet shards` writes.") from None
    with tar:
        last = -1
        while True:
            try:
                member = tar.next()
            except tarfile.TarError:  # the previous member runs past the end of the file
                report.add(TRUNCATED, tar_path, loss=True)
                return
            if member is None:
                break
            if member.offset <= last or member.size < 0 or member.offset_data + member.size > size:
                report.add(TRUNCATED, tar_path, loss=True)  # never step back (a loop), nor read past the end
                return
            last = member.offset
            tar.members.clear()  # tarfile keeps every header; the caller keeps what it needs
            yield tar, member
        with open(tar_path, "rb") as fh:  # tarfile stops quietly at a damaged header: demand the end marker
            fh.seek(tar.offset)
            if fh.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
                report.add(TRUNCATED, tar_path, loss=True)


def _local_entries(tar_path: Path, report: SkipReport):
    """(member, virtual path, label reader) of each member of a local shard: addressed by byte offset."""
    for tar, member in _members(tar_path, report):
        yield member, f"{tar_path}::{member.offset_data}+{member.size}/{member.name}", partial(_label, tar, member)


def tar_samples(tar_path: Path | str, report: SkipReport, keys: set[str], entries=None) -> list[tuple[str, int]]:
    """(virtual path, label) of each KEY.<image> + KEY.cls pair of one shard, in member order.
    `keys`: the keys of the shards read before, so a key repeated across shards is caught too.
    `entries`: (member, virtual path, label reader) triples (default: the local file's, by offset;
    data.remote_shards passes a stream's). Report paths go through `redact` (no credentials)."""
    images: dict[str, str] = {}
    labels: dict[str, int] = {}
    tar_path = redact(str(tar_path)) if entries is not None else tar_path
    for member, path, label_of in entries if entries is not None else _local_entries(tar_path, report):
        key, ext = os.path.splitext(member.name)
        if not member.isfile():
            if not member.isdir():
                report.add(IGNORED, f"{tar_path}::{member.name}")
        elif ext.lower() not in IMAGE_EXTENSIONS and ext != ".cls":
            report.add(IGNORED, f"{tar_path}::{member.name}")
        elif key in keys or key in (images if ext != ".cls" else labels):
            report.add(DUPLICATE, f"{tar_path}::{member.name}", loss=True)
        elif ext != ".cls":
            images[key] = path
        elif (label := label_of()) is None or label < 0:
            report.add(BAD_LABEL, f"{tar_path}::{member.name}", loss=True)
            labels[key] = -1
        else:
            labels[key] = label
    for key in images.keys() - labels.keys():
        report.add(UNLABELLED, redact(images[key]), loss=True)
    for key in labels.keys() - images.keys():
        report.add(ORPHAN, f"{tar_path}::{key}.cls", loss=True)
    keys.update(images, labels)
    return [(path, labels[key]) for key, path in images.items() if labels.get(key, -1) >= 0]


def read_shard_index(folder: Path, report: SkipReport | None = None) -> DatasetIndex:
    """Every sample of the `*.tar` files directly in `folder`, shards in name order, checked
    against the folder's manifest.json when it has one. `report`: shared with the other splits
    of the same read (by default a new one, warned about here).

    Raises:
        UserInputError: no samples, or shards that differ from the manifest (in one line).
    """
    own = report is None
    report = SkipReport() if report is None else report
    walk = FolderWalk(report)
    tars = _tars(folder, walk)
    manifest = manifests.read_manifest(folder)
    if manifest is not None:
        manifests.check_files(folder, manifest, tars)
    keys: set[str] = set()
    per_shard = {os.path.basename(path): tar_samples(Path(path).resolve(), report, keys) for path in tars}
    pairs = [pair for found in per_shard.values() for pair in found]
    names = _class_names(folder, [label for _, label in pairs])
    if manifest is not None:
        manifests.check_contents(folder, manifest, {name: len(found) for name, found in per_shard.items()}, names)
    samples = labelled_samples(pairs, names, report, str(folder), warn=own)
    return DatasetIndex(samples, names, str(folder.resolve()), report)


def labelled_samples(pairs: list[tuple[str, int]], names: tuple[str, ...], report: SkipReport, where: str,
                     warn: bool = True, shown: Callable[[str], str] = str) -> list[Sample]:
    """The (path, label) pairs whose label names a class, as Samples; the rest are counted in
    `report` (under `shown(path)`). Local and remote shards share this rule and its error.

    Raises:
        UserInputError: no pair is left.
    """
    for path, label in pairs:
        if label >= len(names):
            report.add(BAD_LABEL, shown(path), loss=True)
    if warn:
        report.warn(f"shards '{where}'")
    samples = [Sample(path, label) for path, label in pairs if label < len(names)]
    if not samples:
        raise UserInputError(f"no KEY.jpg + KEY.cls pairs in the shards of '{where}'; write them with "
                             "`alexnet shards CLASS_FOLDER OUT_DIR`.")
    return samples


def read_shard_splits(folder: Path) -> dict[str, DatasetIndex]:
    """{'all': index} for a flat shard folder, else one index per train/ val/ test/ folder; what
    they left out is warned about once, for all of them."""
    report = SkipReport()
    if _tars(folder):
        found = {"all": read_shard_index(folder, report)}
    else:
        found = {split: read_shard_index(folder / split, report) for split in SHARD_SPLITS
                 if (folder / split).is_dir() and _tars(folder / split)}
    report.warn(f"shards '{folder}'")
    return found


def _write_shard(target: Path, samples: list[tuple[int, Sample]]) -> None:
    with atomic_path(target) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for number, sample in samples:
            ext = Path(sample.path).suffix.lower().replace(".jpeg", ".jpg")
            tar.add(sample.path, arcname=f"{number:08d}{ext}")
            label = f"{sample.label}".encode()
            info = tarfile.TarInfo(f"{number:08d}.cls")
            info.size = len(label)
            tar.addfile(info, io.BytesIO(label))


def write_shards(index: DatasetIndex, out_dir: Path, per_shard: int = 1000, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write `index` as shards of `per_shard` samples (shuffled by `seed`, so shards mix classes)
    plus classes.txt, then manifest.json last; every file is written atomically. Returns the
    shard paths. Clear a folder of earlier shards first (:func:`clear_shards`)."""
    if per_shard < 1:
        raise UserInputError(f"--per-shard must be at least 1; received {per_shard}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(index))
    numbered = [(int(i), index.samples[int(i)]) for i in order]
    written = []
    for start in range(0, len(numbered), per_shard):
        target = out_dir / f"shard-{start // per_shard:06d}.tar"
        _write_shard(target, numbered[start : start + per_shard])
        written.append((target, len(numbered[start : start + per_shard])))
        if progress is not None:
            progress(written[-1][1])
    with atomic_path(out_dir / CLASSES_FILE) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in index.class_names))
    manifests.write_manifest(out_dir, written, index.class_names)
    log.info("wrote %d shard(s) of %d images to %s", len(written), len(index), out_dir)
    return [path for path, _ in written]


def clear_shards(out_dir: Path) -> list[Path]:
    """Remove what an earlier `alexnet shards` wrote in `out_dir` and its train/ val/ test/ folders:
    the shards its manifest lists, classes.txt and the manifest (shard-NNNNNN.tar, the only names
    it ever used, where there is no manifest). Any other file stays. Returns the removed paths."""
    removed = []
    for folder in [out_dir, *(out_dir / split for split in SHARD_SPLITS)]:
        if not folder.is_dir():
            continue
        manifest = manifests.read_manifest(folder)
        legacy = [os.path.basename(p) for p in _tars(folder) if SHARD_NAME.fullmatch(os.path.basename(p))]
        # the manifest goes first: a folder interrupted from here on reads as unfinished, never as complete
        for path in sorted(manifests.written_files(folder, manifest, legacy), key=lambda p: p.name != manifests.MANIFEST_FILE):
            path.unlink()
            removed.append(path)
    return removed
