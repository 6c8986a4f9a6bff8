"""`alexnet benchmark` times the trainer's own step (train.torch.step), not a copy of it."""

from __future__ import annotations

from alexnet_lab.bench.settings import BenchSettings

TINY = BenchSettings(size=64, batch=2, classes=10, warmup=1, train_steps=2, infer_steps=1, latency_runs=1, threads=1)


def test_the_trainer_inherits_the_step_the_benchmark_times():
    from alexnet_lab.train.torch.step import TorchStep
    from alexnet_lab.train.torch.trainer import TorchTrainer

    assert TorchTrainer.step is TorchStep.step and TorchTrainer.start_phase is TorchStep.start_phase


def test_the_torch_benchmark_runs_the_trainers_step(monkeypatch):
    from alexnet_lab.bench import torch_bench
    from alexnet_lab.train.torch.step import TorchStep

    real, calls = TorchStep.step, []

    def counted(self, images, labels, lr_factor):
        calls.append((images.dtype, tuple(images.shape), lr_factor))
        return real(self, images, labels, lr_factor)

    monkeypatch.setattr(TorchStep, "step", counted)
    monkeypatch.setattr(torch_bench, "_measure_int8", lambda *args: {})  # not the step; slow to calibrate
    monkeypatch.setattr(torch_bench, "_measure_bf16_inference", lambda *args: {})
    result = torch_bench.measure("ours", TINY)
    assert len(calls) == TINY.warmup + TINY.train_steps and result["train_img_s"] > 0
    assert calls[0][1] == (2, 64, 64, 3) and str(calls[0][0]) == "torch.uint8"  # fed as its loader feeds it
    calls.clear()
    torch_bench.measure("reference", TINY)  # the plain torchvision loop stays its own
    assert calls == []


def test_the_data_benchmark_runs_the_trainers_step(monkeypatch, tmp_path):
    from alexnet_lab.bench.data_bench import measure_data
    from alexnet_lab.train.torch.step import TorchStep
    from tests.unit.test_train_views import photo

    for i in range(4):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        photo(tmp_path / f"c{i % 2}" / f"{i}.jpg", 80, 64, i)
    real, calls = TorchStep.step, []
    monkeypatch.setattr(TorchStep, "step", lambda self, *args: calls.append(1) or real(self, *args))
    measure_data("ours", BenchSettings(size=64, batch=2, train_steps=1, view_samples=2, workers=1, threads=1),
                 str(tmp_path))
    assert len(calls) == 1 + 1 + 1  # warm-up, the loader's second batch, the step alone
