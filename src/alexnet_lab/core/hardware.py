"""What the host CPU can do, read without importing a framework (Linux /proc, else unknown).

`ALEXNET_LAB_CPU_FLAGS` replaces the flags read from /proc/cpuinfo (a space- or comma-separated
list; empty means none). The tests use it to run the code paths of the other kind of CPU: the
bf16 rules on a CPU without native bf16, and the fp32 rules on one with it. Only the choices the
project makes follow it; what the hardware then computes does not change.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

FLAGS_ENV = "ALEXNET_LAB_CPU_FLAGS"
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@lru_cache(maxsize=1)
def _proc_cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags: $ALEXNET_LAB_CPU_FLAGS when set, else /proc/cpuinfo's."""
    override = os.environ.get(FLAGS_ENV)
    if override is not None:
        return frozenset(override.replace(",", " ").split())
    return _proc_cpu_flags()


def flags_overridden() -> bool:
    """True when $ALEXNET_LAB_CPU_FLAGS stands in for the real flags (recorded by the benchmark)."""
    return os.environ.get(FLAGS_ENV) is not None


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). Without it bf16 is
    emulated and slower than fp32; with it, faster (the measurements: docs/performance.md)."""
    return bool(NATIVE_BF16_FLAGS & cpu_flags())


def cpu_kind() -> str:
    """A short name for the kind of CPU, as the README's performance tables use it."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "cpu-amx"
    if "avx512_bf16" in flags:
        return "cpu-avx512-bf16"
    return "cpu-fp32"
