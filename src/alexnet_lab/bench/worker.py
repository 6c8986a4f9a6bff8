"""One benchmark measurement in a process of its own (clean peak memory; PyTorch and TensorFlow
never share a process): `python -m alexnet_lab.bench.worker KIND IMPL SETTINGS_JSON [DIR]`.
Prints one JSON object on the last line of stdout."""

from __future__ import annotations

import importlib
import json
import sys

from alexnet_lab.bench.settings import BenchSettings
from alexnet_lab.frameworks.registry import NAMES

# each framework's measurement module, in the framework registry's order (frameworks.registry.NAMES)
FRAMEWORK_BENCHES = ("alexnet_lab.bench.torch_bench", "alexnet_lab.bench.keras_bench")
# measurement -> (module, function); a framework's name measures ours or the reference (IMPL)
MEASUREMENTS = {
    "peak": ("alexnet_lab.bench.torch_bench", "measure_matmul_peak"),
    "pipeline": ("alexnet_lab.bench.torch_bench", "measure_jpeg_pipeline"),
    **{name: (module, "measure") for name, module in zip(NAMES, FRAMEWORK_BENCHES, strict=True)},
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
