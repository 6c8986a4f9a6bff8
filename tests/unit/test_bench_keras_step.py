"""`alexnet benchmark --frameworks keras` times the trainer's own PhaseStep, not model.fit."""

from __future__ import annotations

import pytest

from alexnet_lab.bench.settings import BenchSettings

pytest.importorskip("tensorflow")


def test_the_keras_benchmark_runs_the_trainers_phase_step(monkeypatch):
    from alexnet_lab.bench import keras_bench
    from alexnet_lab.train.keras.steps import PhaseStep

    real, calls = PhaseStep.run, []
    monkeypatch.setattr(PhaseStep, "run", lambda self, x, y: calls.append(1) or real(self, x, y))
    monkeypatch.setattr(keras_bench, "_measure_int8", lambda *args: {})  # not the step; slow to convert
    monkeypatch.setattr(keras_bench, "_measure_bf16_inference", lambda *args: {})
    settings = BenchSettings(size=64, batch=2, classes=10, warmup=1, train_steps=2, infer_steps=1, latency_runs=1)
    assert keras_bench.measure("ours", settings)["train_img_s"] > 0
    assert len(calls) == settings.warmup + settings.train_steps
