"""Tar shards streamed from URLs or `pipe:` commands (data.remote): indexed in one pass, read in order.

`--data 'https://host/shard-{000..009}.tar'` streams every shard once, in order, keeping each
member's ordinal, name and label (image bytes pass through, never stored); a sample is the virtual
path `SOURCE::@ORDINAL/NAME`, so splits, split.json and evaluation treat it like a file. The pairing
rules and the damage counted (truncated shards, unlabelled images, duplicate keys) are
data.shards' own (:func:`~alexnet_lab.data.shards.tar_samples`): a shard the server cuts mid-stream
loses the samples after the cut, as a cut local file does. Class names come from `classes.txt`
beside the shards when the server has one, else from the labels.

Reading a sample goes through the process's :class:`ShardReader`: each shard's stream stays open and
moves forward to the member asked for (the members passed on the way are kept, a few dozen, for
requests that arrive a little out of order); asking for an earlier member re-opens the shard. The
loaders therefore ask for a shard's samples in their order: :func:`slot_plan` gives each DDP rank
and each loader worker its own shards, so each streams its shards once per epoch.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data.images import ImageReadError, read_image_rgb
from alexnet_lab.data.index import DatasetIndex, Sample
from alexnet_lab.data.remote import Stream, expand_braces, is_remote, redact
from alexnet_lab.data.shard_manifest import CLASSES_FILE
from alexnet_lab.data.shards import MAX_CLASSES, MAX_LABEL_BYTES, TRUNCATED, labelled_samples, parse_label, tar_samples
from alexnet_lab.data.walk import SkipReport

log = logging.getLogger(__name__)

REMOTE_MEMBER = re.compile(r"^(?P<source>.+?)::@(?P<ordinal>\d+)/(?P<name>.+)$", re.DOTALL)
MAX_MEMBER_BYTES = 256 * 2**20  # one image member read into memory; bigger is damage, not a photo
MAX_CLASSES_BYTES = 16 * 2**20


def is_remote_member(path: str) -> bool:
    """True for a virtual `SOURCE::@ORDINAL/NAME` sample path of a streamed shard."""
    return is_remote(path) and "::@" in path and REMOTE_MEMBER.match(path) is not None


def _stream_entries(stream: Stream, report: SkipReport):
    """(ordinal, member, .cls bytes or None) of each complete member, in stream order. A stream that
    ends before the archive's end marker is counted as TRUNCATED; the members whose data had all
    arrived are kept, as data.shards keeps those that lie wholly inside a cut local file."""
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError as exc:
        if stream.served >= tarfile.BLOCKSIZE or stream.broken:
            report.add(TRUNCATED, stream.name, loss=True)  # cut inside its first member
            return
        raise UserInputError(f"cannot read shard '{stream.name}' ({exc}); expected an uncompressed tar of KEY.jpg + "
                             "KEY.cls pairs, as `alexnet shards` writes.") from None
    pending, ordinal, damaged = None, 0, False
    while not damaged:
        try:
            member = tar.next()
            if member is None:
                break
            small = member.isfile() and member.name.endswith(".cls") and member.size <= MAX_LABEL_BYTES
            content = tar.extractfile(member).read() if small else None
        except tarfile.TarError:  # the previous member's data, or this one's, ends early
            damaged = True
            continue
        if pending is not None:
            yield pending
        pending = (ordinal, member, content)
        tar.members.clear()  # tarfile keeps every header; the index keeps what it needs
        ordinal += 1
    # tarfile stops quietly at a missing header: demand the end marker, as for a local shard
    if damaged or stream.broken or stream.block_at(tar.offset, tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
        report.add(TRUNCATED, stream.name, loss=True)
    if pending is not None and pending[1].offset_data + pending[1].size <= stream.served:
        yield pending


def _samples_of(source: str, report: SkipReport, keys: set[str]) -> list[tuple[str, int]]:
    with Stream(source) as stream:
        entries = ((member, f"{source}::@{ordinal}/{member.name}", lambda content=content: parse_label(content))
                   for ordinal, member, content in _stream_entries(stream, report))
        found = tar_samples(source, report, keys, entries)
        stream.finish()
        return found


def _class_names(sources: list[str], labels: list[int]) -> tuple[str, ...]:
    """classes.txt beside the first URL when the server has one; else '0'..'K-1' from the labels."""
    first = sources[0]
    if not first.startswith("pipe:"):
        try:
            with Stream(first.rsplit("/", 1)[0] + "/" + CLASSES_FILE) as stream:
                text = stream.read(MAX_CLASSES_BYTES).decode("utf-8")
            return tuple(line.strip() for line in text.splitlines() if line.strip())
        except (UserInputError, UnicodeDecodeError) as exc:
            log.info("no %s beside %s (%s): classes numbered from the labels", CLASSES_FILE, redact(first), exc)
    return tuple(str(i) for i in range(min(max(labels, default=-1) + 1, MAX_CLASSES)))


def read_remote_shards(source: str) -> dict[str, DatasetIndex]:
    """{'all': index} of the shards `source` names (brace ranges expanded), read in one streaming pass.

    Raises:
        UserInputError: a shard that cannot be opened (one line, credentials removed), a failed
            `pipe:` command, or no samples at all.
    """
    sources = expand_braces(source)
    report, keys = SkipReport(), set()
    pairs = [pair for shard in sources for pair in _samples_of(shard, report, keys)]
    names = _class_names(sources, [label for _, label in pairs])
    samples = labelled_samples(pairs, names, report, redact(source), shown=redact)
    return {"all": DatasetIndex(samples, names, None, report)}


class _Cursor:
    """One shard's open stream, positioned before member `next`."""

    def __init__(self, source: str):
        self.stream = Stream(source)
        self.next = 0
        try:
            self.tar = tarfile.open(fileobj=self.stream, mode="r|")
        except tarfile.ReadError:
            self.tar = None

    def advance(self) -> tuple[int, bytes | None]:
        """(ordinal, bytes) of the next member (None for one that is not a file), moving past it."""
        if self.tar is None or (member := self.tar.next()) is None:
            raise tarfile.ReadError("the shard ended early")
        self.tar.members.clear()
        ordinal, self.next = self.next, self.next + 1
        if not member.isfile():
            return ordinal, None
        if member.size > MAX_MEMBER_BYTES:
            raise tarfile.ReadError(f"member {member.name} holds {member.size} bytes")
        content = self.tar.extractfile(member).read()
        if len(content) != member.size:
            raise tarfile.ReadError("the shard ended early")
        return ordinal, content


class ShardReader:
    """Members of streamed shards by ordinal, forward-only per shard (see the module docstring).
    One per process; safe across threads (tf.data's map) and re-made in a forked loader worker, when
    there are workers."""

    KEEP = 64  # members kept after they were passed: requests that arrive a little out of order
    OPEN = 2  # shard streams kept open at once

    def __init__(self):
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._kept: OrderedDict[tuple[str, int], bytes | None] = OrderedDict()
        self.opened: list[str] = []  # sources opened, in order (what tests check)

    def read(self, source: str, ordinal: int) -> bytes:
        with self._lock:
            if (source, ordinal) not in self._kept:
                self._advance_to(source, ordinal)
            content = self._kept[(source, ordinal)]
        if content is None:
            raise tarfile.ReadError(f"member {ordinal} is not a file")
        return content

    def _advance_to(self, source: str, ordinal: int) -> None:
        cursor = self._cursors.pop(source, None)
        if cursor is None or cursor.next > ordinal:
            if cursor is not None:
                cursor.stream.close()
            cursor = _Cursor(source)
            self.opened.append(source)
        self._cursors[source] = cursor
        while len(self._cursors) > self.OPEN:
            self._cursors.popitem(last=False)[1].stream.close()
        try:
            while cursor.next <= ordinal:
                at, content = cursor.advance()
                self._kept[(source, at)] = content
                while len(self._kept) > self.KEEP:
                    self._kept.popitem(last=False)
        except (tarfile.TarError, OSError):
            self._cursors.pop(source).stream.close()
            raise


_reader = ShardReader()
os.register_at_fork(after_in_child=lambda: globals().update(_reader=ShardReader()))  # never share a parent's sockets


def reader() -> ShardReader:
    return _reader


def read_remote_member(path: str, min_side: int | None = None) -> np.ndarray:
    """uint8 RGB pixels of a streamed shard's member named by its virtual path."""
    found = REMOTE_MEMBER.match(path)
    shown = redact(path)
    try:
        content = _reader.read(found["source"], int(found["ordinal"]))
    except (tarfile.TarError, OSError) as exc:
        raise ImageReadError(f"cannot read image '{shown}': {exc}; the shard is truncated or changed since it was "
                             "indexed.") from None
    return read_image_rgb(shown, content=content, min_side=min_side)


def shard_groups(paths: Sequence[str]) -> list[list[int]] | None:
    """Positions of `paths` grouped by shard, each group in stream order; None unless every path is
    a streamed shard's member."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for position, path in enumerate(paths):
        found = REMOTE_MEMBER.match(path) if is_remote(path) else None
        if found is None:
            return None
        groups.setdefault(found["source"], []).append((int(found["ordinal"]), position))
    return [[position for _, position in sorted(members)] for members in groups.values()]


def slot_plan(sizes: Sequence[int], slots: int) -> list[list[int]]:
    """Shards (by index) for each of `slots` readers (rank x loader worker): largest first, each to
    the reader with the fewest samples so far. The same every epoch, so batch counts are too."""
    plan: list[list[int]] = [[] for _ in range(slots)]
    load = [0] * slots
    for shard in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        slot = min(range(slots), key=lambda s: (load[s], s))
        plan[slot].append(shard)
        load[slot] += sizes[shard]
    return plan


def epoch_shard_order(shards: Sequence[int], seed: int, epoch: int, key: int = 0) -> list[int]:
    """The order one reader streams its shards in for an epoch: a function of (seed, epoch, key)."""
    return [shards[i] for i in np.random.default_rng([seed, epoch, key]).permutation(len(shards))]


def stream_order(groups: list[list[int]], seed: int, epoch: int) -> np.ndarray:
    """An epoch's sample order for one reader of all `groups` (Keras): shards shuffled by (seed,
    epoch), each shard's samples in stream order."""
    shards = epoch_shard_order(list(range(len(groups))), seed, epoch)
    return np.asarray([position for shard in shards for position in groups[shard]], np.int64)


def in_stream_order(index: DatasetIndex) -> DatasetIndex:
    """`index` with streamed shards' samples in (shard, ordinal) order, so an evaluation pass reads
    each shard forward once (a split sorts by label); any other index unchanged."""
    if not index.samples or not is_remote_member(index.samples[0].path):
        return index

    def key(sample: Sample) -> tuple[str, int]:
        found = REMOTE_MEMBER.match(sample.path)
        return (found["source"], int(found["ordinal"])) if found else (sample.path, 0)

    return index.subset(sorted(range(len(index)), key=lambda i: key(index.samples[i])))
