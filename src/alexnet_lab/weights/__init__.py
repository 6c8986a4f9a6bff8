"""Everything about weight files: the registry of public weights, downloading them, the file
formats, loading and saving through the canonical layout, and choosing pretrained layers.

`load_weights(source)` and `save_weights(bundle, path, to=...)` are the entry points; framework
file formats (.pth, .weights.h5, .keras) are read and written through the framework protocol
(:mod:`alexnet_lab.frameworks`), so this package imports no framework itself.
"""

from alexnet_lab.weights.files import (
    FORMAT_SUFFIXES,
    check_lossless,
    default_categories,
    format_for_path,
    format_of_name,
    load_weights,
    run_weights_file,
    save_weights,
    source_files,
)

__all__ = ["FORMAT_SUFFIXES", "check_lossless", "default_categories", "format_for_path", "format_of_name",
           "load_weights", "run_weights_file", "save_weights", "source_files"]
