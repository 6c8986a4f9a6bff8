"""Device choice on this CPU-only machine: auto -> CPU, clear errors, device-independent checkpoints."""

from __future__ import annotations

import pytest
import torch

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.frameworks.torch.device import available_devices, resolve_device, resolve_precision
from alexnet_lab.train.torch.checkpoint import load_checkpoint, save_checkpoint
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
    from alexnet_lab.train.torch.checkpoint import _to_cpu

    path = save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "ck.pt")
    assert load_checkpoint(path)["epoch"] == 3
    nested = _to_cpu({"a": [torch.zeros(1)], "b": (torch.ones(1),)})
    assert nested["a"][0].device.type == "cpu" and isinstance(nested["b"], tuple)


def test_channels_last_setting():
    from alexnet_lab.frameworks.torch.device import use_channels_last

    cpu = torch.device("cpu")
    assert use_channels_last("auto", cpu) and use_channels_last("on", cpu) and not use_channels_last("off", cpu)
    assert not use_channels_last("auto", torch.device("mps"))
    with pytest.raises(UserInputError, match="--channels-last takes auto, on or off"):
        use_channels_last("yes", cpu)


def test_compile_setting():
    from alexnet_lab.frameworks.torch.device import use_compile
    from alexnet_lab.train.config import RunConfig

    cpu = torch.device("cpu")
    assert not use_compile("auto", cpu) and use_compile("on", cpu) and not use_compile("off", torch.device("cuda"))
    assert use_compile("auto", torch.device("cuda")) and not use_compile("auto", torch.device("mps"))
    with pytest.raises(UserInputError, match="--compile takes auto, on or off"):
        use_compile("yes", cpu)
    with pytest.raises(UserInputError, match="unknown compile 'yes'"):
        RunConfig(compile="yes")
    with pytest.raises(UserInputError, match="unknown channels-last 'fast'"):
        RunConfig(channels_last="fast")
    with pytest.raises(UserInputError, match="--compile is torch.compile, for --framework torch"):
        RunConfig(framework="keras", compile="on")
    assert RunConfig(framework="keras").compile == "auto"


@pytest.mark.slow
def test_compile_keeps_predictions_and_updates():
    """torch.compile (--compile on) against eager from the same weights, channels-last as on the CPU:
    logits and one SGD step's weights agree within 1e-5 of their scale (about 40 s of compiling)."""
    import torch.nn.functional as F

    from alexnet_lab.frameworks.torch.model import build_model

    torch.manual_seed(0)
    models = [build_model("cifar", 10, dropout=0.0, input_size=32).to(memory_format=torch.channels_last)
              for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    nets = [models[0], torch.compile(models[1])]
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.arange(8)
    for model, net in zip(models, nets):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=True)
        model.train()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()) + 1e-7, msg=name)
    with torch.no_grad():
        logits = [net.eval()(x) for net in nets]
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-5 * float(logits[0].abs().max()))


@pytest.mark.parametrize("variant, size", [("owt", 96), ("cifar", 32), ("original", 227)])
def test_channels_last_keeps_predictions_and_updates(variant, size):
    """The channels-last layout (the CPU default) against the contiguous one, from the same weights:
    logits and one SGD step's weights agree to float32 rounding (tolerance 1e-5 of the scale)."""
    import torch.nn.functional as F

    from alexnet_lab.frameworks.torch.model import build_model

    torch.manual_seed(0)
    models = [build_model(variant, 10, dropout=0.0, input_size=size) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    models[1].to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, size, size)
    y = torch.tensor([0, 1, 2, 3])
    inputs = [x, x.contiguous(memory_format=torch.channels_last)]
    with torch.no_grad():
        logits = [m.eval()(i) for m, i in zip(models, inputs)]
    scale = float(logits[0].abs().max())
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-5 * scale)
    for model, batch in zip(models, inputs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model.train()
        F.cross_entropy(model(batch), y).backward()
        optimizer.step()
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()) + 1e-7, msg=name)
