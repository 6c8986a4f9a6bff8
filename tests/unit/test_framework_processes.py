"""Commands that need both frameworks keep them in separate processes.

With the pinned stack `import tensorflow` then `import torchvision` in one process segfaults.
verify's framework-parity check (and the demo's agreement figures) run each framework's logits
in a worker process of its own (alexnet_lab.verify.worker) and report what each one loaded.
"""

from __future__ import annotations

import json

import numpy as np

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.core.spec import get_arch
from alexnet_lab.weights.formats.safetensors_io import write_safetensors
from tests.conftest import run_cli

CIFAR_INPUT = PreprocessSpec(resize=32, resize_mode="none", crop=32, name="cifar")


def _cifar_bundle() -> WeightBundle:
    rng = np.random.default_rng(5)
    tensors = {k: rng.standard_normal(s).astype(np.float32) * 0.05 for k, s in get_arch("cifar").canonical_shapes(10).items()}
    for key in tensors:
        if key.endswith("running_var"):
            tensors[key] = np.abs(tensors[key]) + 1.0
    return WeightBundle(tensors, ModelMeta("cifar", generic_categories(10), CIFAR_INPUT, source="unit-test"))


def test_verify_command_imports_no_framework_itself(tmp_path):
    weights = write_safetensors(_cifar_bundle(), tmp_path / "cifar.safetensors")
    result = run_cli("verify", str(weights), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    parity = next(c for c in report["checks"] if c["name"] == "framework-parity")
    processes = parity["processes"]
    assert parity["status"] == "PASS" and processes["verify"] == []  # the command itself loads neither
    assert "torch" in processes["torch"] and not {"tensorflow", "keras"} & set(processes["torch"])
    assert "keras" in processes["keras"] and not {"torch", "torchvision"} & set(processes["keras"])
