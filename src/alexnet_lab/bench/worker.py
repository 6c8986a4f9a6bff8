"""One benchmark measurement in a process of its own (clean peak memory; PyTorch and TensorFlow
never share a process): `python -m alexnet_lab.bench.worker KIND IMPL SETTINGS_JSON [DIR]`.
Prints one JSON object on the last line of stdout."""

from __future__ import annotations

import importlib
import json
import sys

from alexnet_lab.bench.settings import BenchSettings

# measurement -> (module, function); 'torch' and 'keras' measure ours or the reference (IMPL)
MEASUREMENTS = {
    "peak": ("alexnet_lab.bench.torch_bench", "measure_matmul_peak"),
    "pipeline": ("alexnet_lab.bench.torch_bench", "measure_jpeg_pipeline"),
    "torch": ("alexnet_lab.bench.torch_bench", "measure"),
    "keras": ("alexnet_lab.bench.keras_bench", "measure"),
    "data": ("alexnet_lab.bench.data_bench", "measure_data"),  # IMPL on the photos in DIR
    "keras-data": ("alexnet_lab.bench.keras_data_bench", "measure_data"),  # the same in Keras on TensorFlow
}


def main(argv: list[str]) -> int:
    kind, impl, settings = argv[0], argv[1], BenchSettings.from_json(argv[2])
    module, name = MEASUREMENTS[kind]
    measure = getattr(importlib.import_module(module), name)
    if kind == "peak":
        result = measure(settings)
    elif kind == "pipeline":
        result = measure(settings, argv[3])
    elif kind in ("data", "keras-data"):
        result = measure(impl, settings, argv[3])
    else:
        result = measure(impl, settings)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
