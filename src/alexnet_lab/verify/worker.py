"""Logits of one framework in a process of its own, for the framework-parity check:
`python -m alexnet_lab.verify.worker FRAMEWORK WEIGHTS.safetensors BATCHES.npz OUT.npz` (the
logits of every named batch of BATCHES under the same name in OUT).

With the pinned stack, importing TensorFlow and then torchvision in one process segfaults, and
the two frameworks' thread pools and allocators are better kept apart anyway: `verify` itself
imports neither and runs this once per framework. The last stdout line is a JSON object with
the frameworks that were loaded (`modules`), which the parity check reports.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from alexnet_lab.frameworks.registry import ENTRIES

WATCHED = tuple(module for entry in ENTRIES.values() for module in entry.modules)  # whose loading is reported
IMPORT_ERROR = 3  # exit status: the framework is not installed


def main(argv: list[str]) -> int:
    framework, weights, batch_path, out_path = argv
    from alexnet_lab.weights.formats.safetensors_io import read_safetensors

    try:
        from alexnet_lab.inference.predict import inference_model

        # the CPU in fp32: GPUs default to TF32 matrix products, about 1e-3 relative, above the
        # parity and fingerprint tolerances (1e-4 of the logit scale)
        predict = inference_model(read_safetensors(weights), framework, device="cpu", precision="fp32")
    except ImportError as exc:
        print(json.dumps({"error": f"{exc}"}))
        return IMPORT_ERROR
    with np.load(batch_path, allow_pickle=False) as batches:
        np.savez(out_path, **{name: predict(batches[name], 32) for name in batches.files})
    print(json.dumps({"modules": sorted(name for name in WATCHED if name in sys.modules)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
