"""The choices the project makes per kind of CPU, tested on whichever kind runs the suite.

ALEXNET_LAB_CPU_FLAGS stands in for /proc/cpuinfo's flags, so a CPU without native bf16 runs the
rules of one with AVX512-BF16 / AMX (bf16 is emulated there: the work is kept tiny) and the
other way round.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alexnet_lab.core import hardware
from alexnet_lab.frameworks.torch.device import resolve_precision

KINDS = {"cpu-fp32": "avx2 fma", "cpu-avx512-bf16": "avx512f avx512_bf16", "cpu-amx": "avx512f avx512_bf16 amx_bf16"}
AUTO = {"cpu-fp32": "fp32", "cpu-avx512-bf16": "bf16", "cpu-amx": "bf16"}


@pytest.fixture(params=sorted(KINDS))
def cpu_kind(request, monkeypatch) -> str:
    monkeypatch.setenv(hardware.FLAGS_ENV, KINDS[request.param])
    return request.param


def test_flags_come_from_the_environment_when_set(monkeypatch):
    monkeypatch.setenv(hardware.FLAGS_ENV, "sse4_2, avx512_bf16")
    assert hardware.cpu_flags() == {"sse4_2", "avx512_bf16"} and hardware.flags_overridden()
    monkeypatch.setenv(hardware.FLAGS_ENV, "")
    assert hardware.cpu_flags() == frozenset() and not hardware.cpu_has_native_bf16()
    monkeypatch.delenv(hardware.FLAGS_ENV)
    assert not hardware.flags_overridden()
    assert hardware.cpu_flags() == hardware._proc_cpu_flags()


def test_kind_and_native_bf16(cpu_kind):
    assert hardware.cpu_kind() == cpu_kind
    assert hardware.cpu_has_native_bf16() is (AUTO[cpu_kind] == "bf16")


def test_torch_training_precision_auto(cpu_kind):
    assert resolve_precision("auto", torch.device("cpu")).name == AUTO[cpu_kind]
    assert resolve_precision("fp32", torch.device("cpu")).name == "fp32"  # a pinned precision stays pinned


def test_keras_training_precision_auto(cpu_kind):
    from alexnet_lab.train.keras.precision import resolve_precision as keras_precision

    chosen = keras_precision("auto", "cpu")
    assert chosen.name == AUTO[cpu_kind]
    assert chosen.policy == {"fp32": "float32", "bf16": "mixed_bfloat16"}[AUTO[cpu_kind]]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_inference_precision_auto(cpu_kind, framework):
    from alexnet_lab.inference.predict import resolve_precision as inference_precision

    assert inference_precision("auto", framework, "cpu") == AUTO[cpu_kind]
    assert inference_precision("fp32", framework, "cpu") == "fp32"  # predict's default stays exact


def test_benchmark_names_the_kind(cpu_kind):
    from alexnet_lab.bench.runner import machine_info

    info = machine_info()
    assert info["cpu_kind"] == cpu_kind and info["native_bf16"] is (AUTO[cpu_kind] == "bf16")
    assert info["cpu_flags_overridden"] is True


@pytest.mark.parametrize("variant, count", [("cifar", 16), ("original", 4)])  # original: LRN and grouped convs
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_bf16_inference_holds_bf16_weights_and_returns_float32(framework, variant, count):
    """--precision bf16 casts the weights once (no per-call re-cast of fc6-fc8) and still returns
    float32 logits close to fp32's: within 3% of the logit scale, same top-1 on most rows."""
    from alexnet_lab.core.spec import get_arch
    from alexnet_lab.frameworks import get_backend

    backend = get_backend(framework)
    torch.manual_seed(0)
    model = backend.build_model(variant, 10)
    size = get_arch(variant).input_size
    batch = np.random.default_rng(0).uniform(-2, 2, (count, size, size, 3)).astype(np.float32)
    exact = backend.predict_logits(model, batch)
    cast = backend.cast_for_inference(model, "bf16")
    if framework == "torch":
        assert {p.dtype for p in cast.parameters()} == {torch.bfloat16}
    else:
        assert {str(w.dtype) for w in cast.weights} == {"bfloat16"}
    approx = backend.predict_logits(cast, batch)
    assert approx.dtype == np.float32
    scale = np.abs(exact).max()
    assert np.abs(approx - exact).max() <= 0.03 * scale
    assert (approx.argmax(1) == exact.argmax(1)).mean() >= 0.75
