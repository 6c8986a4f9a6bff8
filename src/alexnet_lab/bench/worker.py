"""One benchmark measurement in a process of its own (clean peak memory; PyTorch and TensorFlow
never share a process): `python -m alexnet_lab.bench.worker FRAMEWORK IMPL SETTINGS_JSON [DIR]`.
Prints one JSON object on the last line of stdout."""

from __future__ import annotations

import json
import sys

from alexnet_lab.bench.settings import BenchSettings


def main(argv: list[str]) -> int:
    framework, impl, settings = argv[0], argv[1], BenchSettings.from_json(argv[2])
    if framework == "peak":
        from alexnet_lab.bench.torch_bench import measure_matmul_peak

        result = measure_matmul_peak(settings)
    elif framework == "pipeline":
        from alexnet_lab.bench.torch_bench import measure_jpeg_pipeline

        result = measure_jpeg_pipeline(settings, argv[3])
    elif framework == "torch":
        from alexnet_lab.bench.torch_bench import measure

        result = measure(impl, settings)
    else:
        from alexnet_lab.bench.keras_bench import measure

        result = measure(impl, settings)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
