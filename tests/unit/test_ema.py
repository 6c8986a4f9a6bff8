"""--ema-decay and --eval-flip in the PyTorch loop: the average's arithmetic, what it does with
BatchNorm statistics, and a run interrupted inside an epoch that resumes to the uninterrupted
result bit for bit (the moving average and its update count are in the checkpoint)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.ema import decay_at
from alexnet_lab.train.torch.ema import TorchEMA

TINY = dict(data="synthetic", variant="cifar", synthetic_per_class=8, batch_size=16, epochs=3, lr=0.05,
            schedule="onecycle", warmup_epochs=1.0, augment="cifar", precision="fp32", ema_decay=0.9, eval_flip=True,
            dropout=0.3, limit_steps=2)  # 2 steps an epoch: the resume path at a fraction of the time


def test_decay_is_warmed_up_then_capped():
    assert decay_at(0.999, 0) == pytest.approx(0.1)
    assert decay_at(0.999, 80) == pytest.approx(0.9)
    assert decay_at(0.9, 10_000) == 0.9


def test_update_averages_weights_and_batchnorm_statistics_and_copies_counters():
    from alexnet_lab.frameworks.torch.model import build_model

    model = build_model("cifar", 10, 0.0)
    ema = TorchEMA(model, decay=0.5)
    ema.updates = 100  # past the warm-up: the decay is 0.5
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(2 if tensor.is_floating_point() else 7)
    ema.update()
    after, live = ema.model.state_dict(), model.state_dict()
    for key in ("conv1.weight", "fc8.bias", "features.bn1.running_mean", "features.bn1.running_var"):
        key = next(k for k in after if k.endswith(key.split("features.")[-1]))
        assert torch.allclose(after[key], 0.5 * before[key] + 0.5 * live[key]), key
    counter = next(k for k in after if k.endswith("num_batches_tracked"))
    assert after[counter] == live[counter] and ema.updates == 101
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training


def _run(tmp_path, name: str, **changes):
    from alexnet_lab.train.job import run_training

    return run_training(RunConfig(**{**TINY, **changes, "out": str(tmp_path / name)}))


def _rows(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("epoch_seconds", "images_per_second")} for row in rows]


@pytest.fixture
def no_fingerprints(monkeypatch):
    """Saved models carry their digest but not the numpy forward pass of core.fingerprint (most of
    a tiny run's time on two cores); the comparisons below are of the tensors themselves."""
    from alexnet_lab.core import fingerprint
    from alexnet_lab.core.spec import get_arch

    monkeypatch.setattr(fingerprint, "integrity_records", lambda tensors, variant, num_classes, *_: {
        fingerprint.DIGEST_KEY: fingerprint.tensors_digest(tensors, get_arch(variant), num_classes)})


def test_a_torch_run_interrupted_in_epoch_2_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch,
                                                                                  no_fingerprints):
    from safetensors.numpy import load_file

    from alexnet_lab.train.job import run_training
    from alexnet_lab.train.torch.checkpoint import load_checkpoint
    from alexnet_lab.train.torch.trainer import TorchTrainer

    reference = _run(tmp_path, "reference")
    step, calls = TorchTrainer.step, []

    def interrupted(self, *args):  # dies inside epoch 2, after its first checkpoint is on disk
        calls.append(1)
        if len(calls) == TINY["limit_steps"] + 2:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(TorchTrainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "run")
    monkeypatch.setattr(TorchTrainer, "step", step)
    run = tmp_path / "run"
    assert [row["epoch"] for row in _rows(run)] == [1]
    run_training(RunConfig(resume=True, out=str(run)))
    assert _rows(run) == _rows(reference)  # every metric, exactly
    for name in ("best.safetensors", "last.safetensors"):
        mine, theirs = load_file(str(run / name)), load_file(str(reference / name))
        assert all(np.array_equal(mine[k], theirs[k]) for k in theirs), name
    ours, theirs = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (run, reference))
    assert ours["ema"]["updates"] == theirs["ema"]["updates"] == 3 * TINY["limit_steps"]  # one per step
    for part in (ours["model"], ours["ema"]["model"]):
        reference_part = theirs["model"] if part is ours["model"] else theirs["ema"]["model"]
        assert all(torch.equal(part[k], reference_part[k]) for k in reference_part)
    # the saved model is the average, not the live weights
    saved = load_file(str(run / "last.safetensors"))["conv1.weight"]
    assert np.array_equal(saved, ours["ema"]["model"]["features.conv1.weight"].numpy())
    assert not np.array_equal(saved, ours["model"]["features.conv1.weight"].numpy())
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["top1"] == json.loads((reference / "eval.json").read_text())["top1"]
    assert evaluation["top1"] == pytest.approx(max(r["val_top1"] for r in _rows(run)))  # flip-averaged in both


def test_keras_average_swaps_in_and_out_exactly():
    import keras

    from alexnet_lab.frameworks.keras.model import build_model
    from alexnet_lab.train.keras.ema import KerasEMA

    model = build_model("cifar", 10, 0.0)
    ema = KerasEMA(model, decay=0.5)
    ema.updates = 100
    live = [np.array(keras.ops.convert_to_numpy(v.value)) for v in ema.sources]
    for variable in ema.sources:
        variable.assign(variable.value + 2.0)
    ema.update()
    names = [v.path for v in ema.sources]
    assert any("moving_variance" in n for n in names) and not any("seed" in n for n in names)
    assert all(np.allclose(a, b + 1.0) for a, b in zip(ema.arrays(), live))  # 0.5 * old + 0.5 * (old + 2)
    with ema.swapped():
        assert all(np.array_equal(keras.ops.convert_to_numpy(v.value), a) for v, a in zip(ema.sources, ema.arrays()))
    assert all(np.array_equal(keras.ops.convert_to_numpy(v.value), b + 2.0) for v, b in zip(ema.sources, live))


@pytest.mark.slow  # TensorFlow's start-up and tf.function tracing: about a minute on two shared cores
def test_a_keras_run_interrupted_in_epoch_2_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch,
                                                                                  no_fingerprints):
    from safetensors.numpy import load_file

    from alexnet_lab.train.job import run_training
    from alexnet_lab.train.keras.checkpoint import Checkpoint
    from alexnet_lab.train.keras.trainer import KerasTrainer

    reference = _run(tmp_path, "reference", framework="keras")
    step, calls = KerasTrainer.step, []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == TINY["limit_steps"] + 2:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(KerasTrainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "run", framework="keras")
    monkeypatch.setattr(KerasTrainer, "step", step)
    run = tmp_path / "run"
    run_training(RunConfig(resume=True, out=str(run)))
    assert _rows(run) == _rows(reference)
    for name in ("best.safetensors", "last.safetensors"):
        mine, theirs = load_file(str(run / name)), load_file(str(reference / name))
        assert all(np.array_equal(mine[k], theirs[k]) for k in theirs), name
    ours, theirs = (Checkpoint(r / "checkpoints" / "last.keras-ckpt.npz") for r in (run, reference))
    assert ours.state["ema_updates"] == theirs.state["ema_updates"] == 3 * TINY["limit_steps"]
    assert sorted(ours.arrays) == sorted(theirs.arrays)
    assert all(np.array_equal(ours.arrays[k], theirs.arrays[k]) for k in theirs.arrays)


def test_keras_validation_mirrors_numpy_and_tensor_batches_alike():
    import tensorflow as tf

    from alexnet_lab.train.keras.trainer import _mirror

    batch = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)  # N, H, W, C
    assert np.array_equal(_mirror(batch), batch[:, :, ::-1]) and _mirror(batch).flags["C_CONTIGUOUS"]
    assert np.array_equal(_mirror(tf.constant(batch)).numpy(), batch[:, :, ::-1])
