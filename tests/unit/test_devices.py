"""Device choice on this CPU-only machine: auto -> CPU, clear errors, device-independent checkpoints."""

from __future__ import annotations

import pytest
import torch

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.torch_backend.checkpoint import load_checkpoint, save_checkpoint
from alexnet_lab.torch_backend.device import available_devices, resolve_device, resolve_precision
from tests.conftest import run_cli

NO_CUDA = not torch.cuda.is_available()


def test_auto_resolves_to_what_is_there():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if "mps" in available_devices() else "cpu")
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_missing_device_error_lists_available():
    with pytest.raises(UserInputError, match=r"device 'cuda' is not available here; available: cpu"):
        resolve_device("cuda")
    result = run_cli("predict", "x.png", "--weights", "w.pth", "--device", "cuda:1")
    assert result.returncode != 0


def test_precision_defaults():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu).dtype is None
    assert resolve_precision("bf16", cpu).dtype == torch.bfloat16
    with pytest.raises(UserInputError, match="fp16 is for GPUs"):
        resolve_precision("fp16", cpu)


def test_checkpoint_saved_on_cuda_loads_here(tmp_path):
    """Write a file whose tensors are tagged 'cuda:0', as a GPU-trained checkpoint is (a storage
    tagger stands in for the GPU), then load it on this CPU-only machine."""
    import torch.serialization as serialization

    def cuda_tag(storage):
        return "cuda:0"

    serialization.register_package(-1000, cuda_tag, lambda storage, location: None)
    entry = serialization._package_registry[0]
    try:
        torch.save({"model": {"w": torch.ones(2, 3)}, "epoch": 1, "history": [{"x": 1.0}]}, tmp_path / "gpu.pt")
    finally:
        serialization._package_registry.remove(entry)
    if NO_CUDA:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "gpu.pt", weights_only=True)  # what a plain load does here
    loaded = load_checkpoint(tmp_path / "gpu.pt")
    assert loaded["model"]["w"].device.type == "cpu" and torch.equal(loaded["model"]["w"], torch.ones(2, 3))


def test_checkpoints_are_written_from_cpu_tensors(tmp_path):
    from alexnet_lab.torch_backend.checkpoint import _to_cpu

    path = save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "ck.pt")
    assert load_checkpoint(path)["epoch"] == 3
    nested = _to_cpu({"a": [torch.zeros(1)], "b": (torch.ones(1),)})
    assert nested["a"][0].device.type == "cpu" and isinstance(nested["b"], tuple)
