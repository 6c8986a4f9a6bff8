"""The decoded cache's ragged store: every image whole, at its own shape, in one flat byte file.

Each image is kept as data.datasets.resized_view makes it: resized as the preprocessing resizes
(shorter side at the resize, aspect kept; both sides for a 'square' resize), never cropped. Its
bytes lie end to end in one file, in one of two formats: `raw` uint8 pixels (evaluation reads them
exactly as decoding the file gives them) or `jpeg`, re-encoded at the stored size (FFCV's idea: a
fraction of the raw size; lossy, so only training reads it). An index row per sample says where
its bytes are and what shape they hold (INDEX_COLUMNS).

:class:`CachedImages` reads the store with the interface of data.stream.StreamedImages: `[i]` is
the square evaluation view (data.datasets.stored_view, only a crop here), `train_view` the
random-resized crop drawn over the whole stored image (data.train_views.stored_resized_view).

The index comes from disk, so it is checked before anything is mapped (check_index): the rows
follow one another from offset 0 to the file's end, every size is bounded, a raw row holds exactly
its pixels. A row is checked again when it is read (_pixels): its shape against the image guard
and the resize geometry, a JPEG's header against its recorded shape before it is decoded.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from alexnet_lab.core.preprocessing import DEFAULT_MAX_PIXELS, PreprocessSpec, check_image_size, resized_size
from alexnet_lab.data.augment import AugmentSpec
from alexnet_lab.data.images import ImageReadError
from alexnet_lab.data.train_views import Resize, black_unless_strict, pil_resized_crop, row_positions, stored_resized_view

CACHE_FORMATS = ("raw", "jpeg")  # raw uint8 pixels; JPEG re-encoded at the stored size (training only)
DEFAULT_QUALITY = 90  # --cache-quality: libjpeg's quality for the jpeg format
# one int64 row per sample of the data set: its store row (-1: unreadable, skipped), its file's
# stamp (data.cache.file_stamp), where its bytes lie, the stored shape and the photo's own shape
INDEX_COLUMNS = ("row", "size", "mtime_ns", "ctime_ns", "inode", "offset", "nbytes", "height", "width",
                 "photo_height", "photo_width")
ROW, STAMP, OFFSET, NBYTES, SHAPE, PHOTO = 0, slice(1, 5), 5, 6, slice(7, 9), slice(9, 11)


class CacheDamaged(ValueError):
    """A cache's files disagree with each other or with their bounds: it is rebuilt, never read."""


@dataclass(frozen=True)
class StoreFormat:
    """How a stored image's bytes are written: `kind` raw or jpeg, `quality` for jpeg."""

    kind: str = "raw"
    quality: int = DEFAULT_QUALITY

    def encode(self, pixels: np.ndarray) -> bytes:
        if self.kind == "raw":
            return np.ascontiguousarray(pixels, np.uint8).tobytes()
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=self.quality)
        return out.getvalue()

    def decode(self, data: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
        """The height x width x 3 pixels of one row's bytes (`name`: the sample, for errors)."""
        if self.kind == "raw":  # a copy: a view of the read-only map would reach torch as a read-only tensor
            return np.array(data).reshape(height, width, 3)
        try:
            image = Image.open(io.BytesIO(data.tobytes()))
            if image.format != "JPEG" or image.size != (width, height):  # checked before any pixel is decoded
                raise ValueError(f"a {image.format} image of {image.size[0]}x{image.size[1]} pixels, "
                                 f"not the recorded {width}x{height} JPEG")
            return np.array(image.convert("RGB"))  # writable, as the raw rows are
        except Exception as exc:  # noqa: BLE001 - PIL reports corrupt data with many exception types
            raise ImageReadError(f"cannot read the cached image of '{name}': {exc}; delete the cache folder "
                                 "to rebuild it.") from None


def check_index(index: np.ndarray, count: int, data_bytes: int, fmt: StoreFormat) -> None:
    """Raise CacheDamaged unless `index` (INDEX_COLUMNS) places `count` rows end to end over
    exactly `data_bytes` bytes, each of a bounded shape (raw: exactly its pixels)."""
    if index.dtype != np.int64 or index.ndim != 2 or index.shape[1] != len(INDEX_COLUMNS):
        raise CacheDamaged(f"an index of {index.dtype} {index.shape}, not int64 rows of {len(INDEX_COLUMNS)}")
    rows = index[:, ROW]
    stored = index[rows >= 0]
    if rows.min(initial=0) < -1 or not np.array_equal(stored[:, ROW], np.arange(count)):
        raise CacheDamaged("store rows that are not 0, 1, 2, ... in sample order")
    shapes, photos, sizes = stored[:, SHAPE], stored[:, PHOTO], stored[:, NBYTES]
    if (shapes < 1).any() or (photos < 1).any() or (shapes.prod(axis=1) > DEFAULT_MAX_PIXELS).any():
        raise CacheDamaged("an image shape out of bounds")
    if (sizes < 1).any() or (fmt.kind == "raw" and not np.array_equal(sizes, shapes.prod(axis=1) * 3)):
        raise CacheDamaged("a row whose byte count does not fit its shape")
    ends = np.cumsum(sizes)
    if not np.array_equal(stored[:, OFFSET], ends - sizes) or int(ends[-1] if len(ends) else 0) != data_bytes:
        raise CacheDamaged("rows that do not follow one another to the data file's end")


class CachedImages:
    """A read-only N x S x S x 3 uint8 'array' over a ragged store (S: the spec's resize)."""

    dtype = np.dtype(np.uint8)

    def __init__(self, path: Path, index: np.ndarray, spec: PreprocessSpec, fmt: StoreFormat,
                 names: Sequence[str], strict: bool = False):
        """`index`: the stored rows' INDEX_COLUMNS (checked by check_index); `names`: their samples' paths."""
        self.path, self.index, self.spec, self.fmt = Path(path), index, spec, fmt
        self.names, self.strict = list(names), strict
        self.size = spec.resize
        self._data: np.memmap | None = None  # mapped on first read, in the process that reads
        self._warned: set[str] = set()

    def __getstate__(self) -> dict:  # a DataLoader worker maps the file itself; the map is never pickled
        return {**self.__dict__, "_data": None}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.size, self.size, 3)

    @property
    def ndim(self) -> int:
        return 4

    def _pixels(self, position: int) -> tuple[np.ndarray, tuple[int, int]]:
        """(the whole stored image, the photo's (height, width)) of row `position`."""
        offset, nbytes = int(self.index[position, OFFSET]), int(self.index[position, NBYTES])
        height, width = (int(v) for v in self.index[position, SHAPE])
        name = self.names[position]
        check_image_size(height, width)
        if resized_size(height, width, self.spec) != (height, width):  # not at the store size: a bad index
            raise ImageReadError(f"the cached image of '{name}' is {width}x{height}, not at the store size; delete "
                                 "the cache folder to rebuild it.")
        if self._data is None:
            self._data = np.memmap(self.path, np.uint8, "r")
        pixels = self.fmt.decode(self._data[offset : offset + nbytes], height, width, name)
        return pixels, (int(self.index[position, PHOTO][0]), int(self.index[position, PHOTO][1]))

    def read(self, position: int) -> np.ndarray:
        """Row `position`'s S x S evaluation square (black if unreadable and not strict)."""
        from alexnet_lab.data.datasets import stored_view

        try:
            return stored_view(self._pixels(position)[0], self.spec)
        except ImageReadError as exc:
            return self._black(self.names[position], exc, self.size)

    def train_view(self, position: int, augment: AugmentSpec, crop: int, rng: np.random.Generator,
                   resize: Resize = pil_resized_crop) -> np.ndarray:
        """A crop x crop training view of row `position`: the random-resized crop drawn over its
        whole stored image (black if unreadable and not strict)."""
        try:
            pixels, photo = self._pixels(position)
            return stored_resized_view(pixels, photo, augment, crop, rng, resize)
        except ImageReadError as exc:
            return self._black(self.names[position], exc, crop)

    def _black(self, name: str, exc: ImageReadError, size: int) -> np.ndarray:
        return black_unless_strict(exc, name, size, self.strict, self._warned, "cached image")

    def subset(self, positions: Sequence[int] | slice) -> CachedImages:
        """The rows at `positions`, still read from the same file."""
        chosen = np.arange(len(self))[positions] if isinstance(positions, slice) else np.asarray(positions, np.int64)
        return CachedImages(self.path, self.index[chosen], self.spec, self.fmt, [self.names[int(i)] for i in chosen],
                            self.strict)

    def __getitem__(self, key):
        positions = row_positions(key, len(self))
        if isinstance(positions, int):
            return self.read(positions)
        if len(positions) == 0:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack([self.read(i) for i in positions])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)
