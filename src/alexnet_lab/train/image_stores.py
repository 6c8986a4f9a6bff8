"""The training and validation stores a run reads, in the data mode it resolves to.

- `memory`: every image decoded once into a uint8 array before the first step (CIFAR-10 at 32x32
  and the synthetic set, where the whole set is a few hundred MB at most);
- `stream`: a :class:`~alexnet_lab.data.stream.StreamedImages` per split, decoded per sample by
  each framework's loader (PyTorch's workers or its training process, Keras' tf.data map); memory
  is bounded by the batches in flight;
- `cache`: streaming with --cache-dir: a memory-mapped decoded store of whole images (aspect kept;
  raw pixels, or JPEGs re-encoded at the store size with --cache-format jpeg) built once and reused.

All three give each framework's loader the same (images, labels) pair: images index like an
N x S x S x 3 uint8 array, so the loaders, the sampler and resume are the same code in every mode.
"""

from __future__ import annotations

import logging

from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data.datasets import DataSplits, decode_all
from alexnet_lab.data.stream import StreamedImages, min_side
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.context import RunContext

log = logging.getLogger(__name__)

IN_MEMORY_SOURCES = ("synthetic", "cifar10")  # small, fixed-size images: decoding them first is cheaper


def data_mode(config: RunConfig) -> str:
    """'memory', 'stream' or 'cache' (streaming from --cache-dir), from --data-mode and --data."""
    mode = config.data_mode
    if mode == "auto":
        mode = "memory" if config.data in IN_MEMORY_SOURCES else "stream"
    return "cache" if mode == "stream" and config.cache_dir else mode


def make_stores(ctx: RunContext, data: DataSplits, spec: PreprocessSpec, config: RunConfig) -> tuple[dict, str]:
    """({'train': (images, labels), 'val': ..., 'train_paths': [...], 'val_paths': [...]}, mode)."""
    mode = data_mode(config)
    stores = {}
    for name in ("train", "val"):
        index = data.splits[name]
        index.check_complete(config.strict)  # --strict: shards that lost samples are refused, not warned about
        if mode == "stream":
            images, labels, bad = StreamedImages(index.paths, spec, config.decoder, config.strict), index.labels, []
        else:
            with ctx.progress(total=len(index), desc=f"decoding {name}" + (" into the cache" if mode == "cache" else "")) as bar:
                if mode == "cache":
                    from alexnet_lab.data.cache import cached_store
                    from alexnet_lab.data.ragged import StoreFormat

                    images, labels, bad, _ = cached_store(index, spec, config.decoder, config.cache_dir, config.strict,
                                                          progress=bar.update,
                                                          fmt=StoreFormat(config.cache_format, config.cache_quality))
                else:
                    images, labels, bad = decode_all(index, spec, config.strict, progress=bar.update,
                                                     min_side=min_side(spec, config.decoder))
        if bad:
            log.warning("%s: skipped %d unreadable image(s), e.g. %s", name, len(bad), bad[0])
        skipped = set(bad)
        stores[name] = (images, labels)
        stores[f"{name}_paths"] = [s.path for s in index.samples if s.path not in skipped]
    log.info("data mode: %s", mode)
    return stores, mode
