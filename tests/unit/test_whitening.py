"""--conv1-init whiten: the filters decorrelate the patches they were computed from, the choice is
checked up front, both frameworks load the filters into conv1 unchanged, and a whitened run
resumes to the uninterrupted result."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch  # noqa: F401  (PyTorch before Keras in this process)

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.spec import get_arch
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.whitening import initial_conv1, patch_covariance, whitened_conv1, whitening_filters

NORM = (np.full(3, 1 / 64, np.float32), np.full(3, -2.0, np.float32), False)


def _images(count: int = 64, size: int = 32, seed: int = 0) -> np.ndarray:
    """Correlated uint8 images: smooth random fields, so neighbouring pixels and channels covary."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, size // 4, size // 4, 1))
    smooth = np.repeat(np.repeat(base, 4, 1), 4, 2) + 0.3 * rng.normal(size=(count, size, size, 3))
    return np.clip(128 + 40 * smooth, 0, 255).astype(np.uint8)


def test_filters_give_unit_decorrelated_responses_on_their_own_patches():
    images = _images()
    covariance = patch_covariance(images, NORM, 5)
    weight = whitening_filters(covariance, 64, 5, epsilon=0.0).reshape(64, -1).astype(np.float64)
    positive = weight[0::2]
    responses = positive @ covariance @ positive.T
    np.testing.assert_allclose(responses, np.eye(32), atol=1e-6)
    np.testing.assert_array_equal(weight[1::2], -positive)  # each filter with its negative


def test_covariance_matches_numpy_over_explicit_patches():
    images = _images(4, 12)
    x = (images.astype(np.float32) * NORM[0] + NORM[1]).transpose(0, 3, 1, 2)
    rows = [x[n, :, i:i + 3, j:j + 3].reshape(-1) for n in range(4) for i in range(10) for j in range(10)]
    np.testing.assert_allclose(patch_covariance(images, NORM, 3), np.cov(np.array(rows, np.float64).T, bias=True),
                               rtol=1e-5, atol=1e-7)


def test_patches_are_taken_at_the_stride_conv1_uses():
    images = _images(4, 12)
    x = (images.astype(np.float32) * NORM[0] + NORM[1]).transpose(0, 3, 1, 2)
    rows = [x[n, :, i:i + 3, j:j + 3].reshape(-1) for n in range(4) for i in range(0, 10, 4) for j in range(0, 10, 4)]
    np.testing.assert_allclose(patch_covariance(images, NORM, 3, stride=4), np.cov(np.array(rows, np.float64).T, bias=True),
                               rtol=1e-5, atol=1e-7)


def test_whitened_conv1_is_seeded_and_shaped_for_the_variant():
    images = _images(40)
    arch = get_arch("cifar")
    first, again = whitened_conv1(images, arch, NORM, 32, 3), whitened_conv1(images, arch, NORM, 32, 3)
    assert first["conv1.weight"].shape == (64, 3, 5, 5) and first["conv1.weight"].dtype == np.float32
    np.testing.assert_array_equal(first["conv1.weight"], again["conv1.weight"])
    assert not first["conv1.bias"].any()
    wide = whitened_conv1(images, get_arch("cifar-wide"), NORM, 32, 3)["conv1.weight"]
    assert wide.shape == (96, 3, 5, 5)


def test_refusals_are_one_line_and_say_what_to_do():
    with pytest.raises(UserInputError, match="conv1 width of at most 54"):
        whitening_filters(np.eye(27), 64, 3)
    cifar = get_arch("cifar")
    grouped = replace(cifar, convs=(replace(cifar.convs[0], groups=2), *cifar.convs[1:]))
    with pytest.raises(UserInputError, match="needs an ungrouped conv1"):
        whitened_conv1(_images(4), grouped, NORM, 32, 0)
    with pytest.raises(UserInputError, match="training split is empty"):
        whitened_conv1(np.zeros((0, 32, 32, 3), np.uint8), get_arch("cifar"), NORM, 32, 0)
    with pytest.raises(UserInputError, match="--conv1-init whiten sets conv1 at the start of a scratch run"):
        RunConfig(conv1_init="whiten", strategy="finetune", weights="imagenet")
    with pytest.raises(UserInputError, match="conv1-init"):
        RunConfig(conv1_init="pca")


def test_random_is_the_default_and_computes_nothing():
    assert RunConfig().conv1_init == "random"
    assert initial_conv1(RunConfig(), {"train": (None, None)}, get_arch("cifar"), NORM, 32) is None


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_each_framework_loads_the_filters_into_conv1_unchanged(framework):
    from alexnet_lab.frameworks import get_backend

    backend = get_backend(framework)
    model = backend.build_model("cifar", 10, 0.0)
    tensors = whitened_conv1(_images(16), get_arch("cifar"), NORM, 32, 0)
    backend.from_canonical(model, tensors, partial=True)
    canonical = backend.to_canonical(model)
    np.testing.assert_array_equal(canonical["conv1.weight"], tensors["conv1.weight"])
    np.testing.assert_array_equal(canonical["conv1.bias"], tensors["conv1.bias"])


def test_a_whitened_torch_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Killed inside epoch 2 (after its first checkpoint), resumed: the same metrics and weights."""
    from alexnet_lab.train.job import run_training
    from alexnet_lab.train.torch import trainer as torch_trainer
    from alexnet_lab.weights.files import load_weights

    tiny = dict(data="synthetic", variant="cifar", synthetic_per_class=8, batch_size=16, epochs=2, lr=0.05,
                schedule="onecycle", warmup_epochs=1.0, augment="cifar", precision="fp32", dropout=0.0,
                limit_steps=2, conv1_init="whiten")
    run_training(RunConfig(**tiny, out=str(tmp_path / "reference")))
    real_step, calls = torch_trainer.TorchTrainer.step, []

    def dying_step(self, *args):
        calls.append(1)
        if len(calls) == tiny["limit_steps"] + 1:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(torch_trainer.TorchTrainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_training(RunConfig(**tiny, out=str(tmp_path / "run")))
    monkeypatch.setattr(torch_trainer.TorchTrainer, "step", real_step)
    run_training(RunConfig(resume=True, out=str(tmp_path / "run")))
    ours, theirs = (load_weights(tmp_path / name / "last.safetensors").tensors for name in ("run", "reference"))
    for key in theirs:
        np.testing.assert_array_equal(ours[key], theirs[key])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["conv1_init"] == "whiten"
