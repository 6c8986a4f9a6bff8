"""Streaming: the uint8 store's interface over image files decoded on demand.

:class:`StreamedImages` answers `len`, `shape`, `[i]`, `[slice]` and `[positions]` like the
in-memory N x S x S x 3 array that :func:`~alexnet_lab.data.datasets.decode_all` builds, but
decodes each image when it is asked for (with the same :func:`stored_pixels` the in-memory store
uses, so both give the same pixels). The training loaders index it per sample in their workers,
so memory is bounded by the batches in flight, not by the data set. A random-resized-crop training
view is cut from the whole photo instead (:meth:`StreamedImages.train_view`, data.train_views).

An unreadable file met while streaming is logged once and read as a black image (its place in
the epoch is kept, so every process still agrees on the batch count); `strict` raises instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data.augment import AugmentSpec
from alexnet_lab.data.images import ImageReadError
from alexnet_lab.data.train_views import Resize, black_unless_strict, pil_resized_crop, random_resized_view, row_positions

DECODERS = ("draft", "pil")  # draft: PIL's reduced-size JPEG decoding down to the resize; pil: full size


def min_side(spec: PreprocessSpec, decoder: str) -> int | None:
    """The smallest shorter side a JPEG may be decoded at for `spec` (None: full size)."""
    if decoder != "draft" or spec.resize_mode == "none":
        return None
    return spec.resize


def stored_pixels(path: str, spec: PreprocessSpec, decoder: str = "pil") -> np.ndarray:
    """The square uint8 image the store keeps for `path` (decoded, resized, centre-cropped)."""
    from alexnet_lab.data.datasets import load_pixels, stored_view

    return stored_view(load_pixels(path, min_side(spec, decoder)), spec)


def resized_pixels(path: str, spec: PreprocessSpec, decoder: str = "pil") -> tuple[np.ndarray, tuple[int, int]]:
    """(pixels, photo size): the whole image the decoded cache keeps for `path` (data.datasets.resized_view:
    resized like the spec, aspect kept, not cropped) and the (height, width) of the photo itself, read
    from its header before a reduced-size decode (the size random-resized-crop boxes are drawn on)."""
    from alexnet_lab.data.datasets import load_pixels, resized_view

    header: list[tuple[int, int]] = []
    smallest = min_side(spec, decoder)

    def plan(height: int, width: int) -> int | None:
        header.append((height, width))
        return smallest

    pixels = load_pixels(path, plan)
    return resized_view(pixels, spec), header[0] if header else pixels.shape[:2]


def stored_size(spec: PreprocessSpec) -> int:
    """Side of the stored square; streaming needs it fixed, so a spec must resize."""
    if spec.resize_mode == "none":
        raise UserInputError(f"preprocessing '{spec.name}' keeps every image's own size, which a streamed or cached "
                             "store cannot; pass --data-mode memory.")
    return spec.resize


class StreamedImages:
    """A read-only uint8 N x S x S x 3 'array' whose rows are decoded from files when indexed."""

    dtype = np.dtype(np.uint8)

    def __init__(self, paths: Sequence[str], spec: PreprocessSpec, decoder: str = "draft", strict: bool = False,
                 threads: int = 0):
        """`threads`: decoding threads for a multi-row read (0: up to 4, one per core)."""
        self.paths, self.spec, self.decoder, self.strict = list(paths), spec, decoder, strict
        self.size = stored_size(spec)
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, 3)

    @property
    def ndim(self) -> int:
        return 4

    def read(self, position: int) -> np.ndarray:
        """Row `position`: the stored view of its file (black if unreadable and not strict)."""
        try:
            return stored_pixels(self.paths[position], self.spec, self.decoder)
        except ImageReadError as exc:
            return self._black(self.paths[position], exc, self.size)

    def train_view(self, position: int, augment: AugmentSpec, crop: int, rng: np.random.Generator,
                   resize: Resize = pil_resized_crop) -> np.ndarray:
        """A crop x crop training view of row `position` cut from its whole photo
        (data.train_views.random_resized_view; black if unreadable and not strict)."""
        try:
            return random_resized_view(self.paths[position], augment, crop, rng, resize)
        except ImageReadError as exc:
            return self._black(self.paths[position], exc, crop)

    def _black(self, path: str, exc: ImageReadError, size: int) -> np.ndarray:
        return black_unless_strict(exc, path, size, self.strict, self._warned)

    def subset(self, positions: Sequence[int] | slice) -> StreamedImages:
        """The rows at `positions`, still decoded on demand."""
        chosen = self.paths[positions] if isinstance(positions, slice) else [self.paths[int(i)] for i in positions]
        return StreamedImages(chosen, self.spec, self.decoder, self.strict, self.threads)

    def __getitem__(self, key):
        positions = row_positions(key, len(self))
        if isinstance(positions, int):
            return self.read(positions)
        if len(positions) == 0:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        with ThreadPoolExecutor(min(self.threads, len(positions))) as pool:  # PIL and BLAS release the GIL
            return np.stack(list(pool.map(self.read, positions)))


def select(images, positions: slice):
    """Rows `positions` of a store: lazily for a streamed or cached one, a view or copy of an array."""
    return images[positions] if isinstance(images, np.ndarray) else images.subset(positions)
