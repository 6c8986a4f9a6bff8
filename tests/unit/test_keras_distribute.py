"""Keras training under tf.distribute (--distribute): refusals, TF_CONFIG, and 2 replicas on the CPU.

The multi-replica checks run in fresh processes: the CPU is split into 2 logical devices, which
TensorFlow allows only before it starts, so it cannot happen inside the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.train.config import RunConfig
from tests.conftest import REPO, run_cli

pytest.importorskip("tensorflow")

LOGICAL_CPUS = {"ALEXNET_LAB_KERAS_LOGICAL_CPUS": "2"}
CLIP = 0.05  # below the gradient norm of the first batch (about 0.18)

# One process, 2 logical CPUs. The same owt model (no BatchNorm, dropout 0, 64x64 input) takes
# SGD steps without a strategy and under MirroredStrategy(/cpu:0, /cpu:1), from the same weights
# on the same images: a global batch of 8 (4 per replica), then a last batch of 1 (1 + 0: one
# replica gets no image at all).
# 'plain': Nesterov momentum, coupled L2, label smoothing, two learning-rate groups;
# 'clipped': the same with --grad-clip active. To keep it fast only conv1, conv5 and fc8 train
# (the gradient still flows back through every layer to conv1; fc6's 38M weights stay frozen).
# Then an fp16 step whose all-reduced gradients overflow is skipped on both replicas.
STEPS = """
import json, sys
import numpy as np
from alexnet_lab.train.keras.distribute import resolve_distribution
dist = resolve_distribution("mirrored", "cpu")  # splits the CPU first: ALEXNET_LAB_KERAS_LOGICAL_CPUS=2
import tensorflow as tf
from alexnet_lab.core.spec import get_arch
from alexnet_lab.frameworks.keras import build_model, from_canonical
from alexnet_lab.frameworks.keras.initializers import torch_default_init
from alexnet_lab.train.keras.precision import KerasPrecision, LossScale, dtype_policy
from alexnet_lab.train.keras.steps import PhaseStep
from alexnet_lab.train.keras.trainer import _set_trainable
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.phases import Phase, plan_phases

out = {"replicas": dist.strategy.num_replicas_in_sync, "devices": dist.devices}
init = torch_default_init(get_arch("owt"), 4, np.random.default_rng(0))
rng = np.random.default_rng(1)
x, y = rng.normal(size=(9, 64, 64, 3)).astype(np.float32), rng.integers(0, 4, 9)
phase = Phase("train", 1, (("conv1", 0.005), ("conv5", 0.05), ("fc8", 0.05)))
trained = [name for name, _ in phase.layer_lrs]
models = {}
for key, scope in (("single", None), ("two", dist)):
    if scope is None:
        models[key] = build_model("owt", 4, 0.0, input_size=64)
    else:
        with scope.scope():
            models[key] = build_model("owt", 4, 0.0, input_size=64)
    _set_trainable(models[key], phase)

def train(key, config):
    model = from_canonical(models[key], init)
    step = (PhaseStep(model, phase, config, LossScale(False)) if key == "single"
            else dist.phase_step(model, phase, config, LossScale(False)))
    step.set_lr(1.0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    norm = None
    if key == "single":
        grads = step._grads(x[:8], y[:8], 1.0)[3]
        norm = float(np.sqrt(sum(np.sum(np.square(g.numpy().astype(np.float64))) for g in grads)))
    else:
        data = dist.distribute_dataset(data)
    steps = []
    for bx, by in data:
        loss, correct = step.run(bx, by)
        steps.append({"loss": loss, "correct": correct,
                      "weights": {n: [w.tolist() for w in model.get_layer(n).get_weights()] for n in trained}})
    return {"steps": steps, "norm": norm}

for name, values in {"plain": {}, "clipped": {"grad_clip": float(sys.argv[1])}}.items():
    config = RunConfig(variant="owt", lr=0.05, weight_decay=5e-4, label_smoothing=0.1, dropout=0.0, **values)
    out[name] = {key: train(key, config) for key in ("single", "two")}

with dist.scope(), dtype_policy(KerasPrecision("fp16")):
    model = build_model("cifar", 10, 0.0, input_size=32)
scale = LossScale(True, value=2.0**40)  # float16 gradients overflow at this scale
config = RunConfig(variant="cifar")
step = dist.phase_step(model, plan_phases(config, get_arch("cifar"), ())[0], config, scale)
before = [v.numpy().copy() for v in model.trainable_variables]
batch = dist.distribute_dataset(tf.data.Dataset.from_tensor_slices(
    (rng.normal(size=(4, 32, 32, 3)).astype(np.float32), np.arange(4, dtype=np.int64))).batch(4))
for bx, by in batch:
    step.run(bx, by)
out["fp16"] = {"scale": scale.value, "iterations": int(step.optimizers[0].iterations.numpy()),
               "unchanged": all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables))}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def steps() -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **LOGICAL_CPUS}
    result = subprocess.run([sys.executable, "-c", STEPS, str(CLIP)], capture_output=True, text=True, env=env,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _relative_difference(a: dict, b: dict) -> float:
    """max |a - b| / max |a| over the weight arrays of the trained layers."""
    pairs = [(np.asarray(u), np.asarray(v)) for name in a for u, v in zip(a[name], b[name])]
    return max(float(np.abs(u - v).max() / np.abs(u).max()) for u, v in pairs)


@pytest.mark.parametrize("name", ["plain", "clipped"])
def test_two_replicas_update_the_weights_like_one_device(steps, name):
    """The replicas' losses are shares of the global mean, their gradients are summed once, and
    clipping sees the summed gradients: the update equals one device's on the whole batch."""
    assert steps["replicas"] == 2 and steps["devices"] == ["/cpu:0", "/cpu:1"]
    single, two = steps[name]["single"], steps[name]["two"]
    assert len(single["steps"]) == len(two["steps"]) == 2  # a batch of 8 (4 + 4), then 1 (1 + 0)
    for one, both in zip(single["steps"], two["steps"]):
        assert one["correct"] == both["correct"]
        assert np.isclose(one["loss"], both["loss"], rtol=1e-5), (one["loss"], both["loss"])
        assert _relative_difference(one["weights"], both["weights"]) < 1e-5
    moved = _relative_difference(single["steps"][0]["weights"], single["steps"][1]["weights"])
    assert moved > 1e-4, "the second step did not change the weights"
    if name == "clipped":  # the clip is active: the step would differ if it clipped per replica
        assert single["norm"] > 2 * CLIP


def test_fp16_overflow_is_skipped_on_every_replica(steps):
    assert steps["fp16"] == {"scale": 2.0**39, "iterations": 0, "unchanged": True}


@pytest.mark.slow  # tests/integration/test_train_keras_distribute.py trains end to end too
def test_train_cli_with_mirrored_on_two_logical_cpus(tmp_path):
    """2 epochs end to end with dropout and BatchNorm; 30 training images in batches of 29 (15 + 14
    per replica) and 1 (1 + 0: a replica with no image)."""
    run = tmp_path / "run"
    result = run_cli("train", "--framework", "keras", "--distribute", "mirrored", "--data", "synthetic", "--variant",
                     "cifar", "--synthetic-per-class", "4", "--batch-size", "29", "--epochs", "2", "--augment", "cifar",
                     "--out", str(run), env=LOGICAL_CPUS, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("config.json", "split.json", "metrics.jsonl", "eval.json", "best.safetensors", "last.safetensors",
                 "checkpoints/last.keras-ckpt.npz", "checkpoints/best.keras-ckpt.npz", "plots/curves.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["distribute"] == "mirrored"
    assert config["resolved"]["distribute"] == {"strategy": "mirrored", "replicas": 2, "workers": 1,
                                                "devices": ["/cpu:0", "/cpu:1"]}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2] and all(np.isfinite(row["train_loss"]) for row in rows)


def test_distribute_is_refused_for_pytorch():
    with pytest.raises(UserInputError, match="torchrun"):
        RunConfig(framework="torch", distribute="mirrored")
    with pytest.raises(UserInputError, match="Did you mean 'multi-worker'"):
        RunConfig(framework="keras", distribute="multiworker")
    from alexnet_lab.train.keras.distribute import check_backend

    with pytest.raises(UserInputError, match="KERAS_BACKEND=tensorflow.*torchrun"):
        check_backend("mirrored", "torch")
    check_backend("none", "torch")
    result = run_cli("train", "--framework", "torch", "--distribute", "multi-worker", "--out", "unused")
    assert result.returncode != 0 and "torchrun" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_tf_config_is_checked():
    from alexnet_lab.train.keras.distribute import parse_tf_config

    two = {"cluster": {"worker": ["a:2222", "b:2222"]}}
    task = parse_tf_config(json.dumps({**two, "task": {"type": "worker", "index": 1}}))
    assert (task.index, task.workers, task.is_chief) == (1, 2, False)
    assert parse_tf_config(json.dumps({**two, "task": {"type": "worker", "index": 0}})).is_chief
    chief = {"cluster": {"chief": ["c:2222"], "worker": ["a:2222"]}, "task": {"type": "worker", "index": 0}}
    assert not parse_tf_config(json.dumps(chief)).is_chief and parse_tf_config(json.dumps(chief)).workers == 2
    for text, message in ((None, "not set"), ("{cluster", "not valid JSON"), ('{"task": {}}', "needs 'cluster'"),
                          (json.dumps({**two, "task": {"type": "worker", "index": 2}}), "needs 'task'"),
                          (json.dumps({"cluster": {"ps": ["p:1"]}, "task": {"type": "ps", "index": 0}}), "cluster")):
        with pytest.raises(UserInputError, match=message) as info:
            parse_tf_config(text)
        assert "\n" not in str(info.value)


def test_logical_cpu_knob_is_checked(monkeypatch):
    from alexnet_lab.frameworks.keras.device import logical_cpu_count

    monkeypatch.delenv("ALEXNET_LAB_KERAS_LOGICAL_CPUS", raising=False)
    assert logical_cpu_count() == 1
    monkeypatch.setenv("ALEXNET_LAB_KERAS_LOGICAL_CPUS", "two")
    with pytest.raises(UserInputError, match="whole number"):
        logical_cpu_count()
