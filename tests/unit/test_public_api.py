"""The public face, `import alexnet_lab`: one call builds a model with weights in either framework,
and importing the package loads no framework."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import alexnet_lab
from alexnet_lab.core.errors import UserInputError
from tests.conftest import REPO


@pytest.fixture()
def offline_registry(monkeypatch, torchvision_pth):
    """Registry names ('imagenet', 'DEFAULT') load the generated torchvision-format file."""
    monkeypatch.setattr("alexnet_lab.weights.download.fetch", lambda entry: torchvision_pth)


def test_importing_the_package_loads_no_framework():
    code = ("import sys, alexnet_lab; alexnet_lab.transforms; alexnet_lab.list_weights(); "
            "print(__import__('json').dumps(sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_default_framework_comes_from_the_registry_alone():
    """The signatures' default is the registry's; reading it loads the registry, not the protocol or
    the weight bundle (frameworks/__init__ imports those on use)."""
    import inspect

    from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK

    assert inspect.signature(alexnet_lab.alexnet).parameters["framework"].default == DEFAULT_FRAMEWORK
    assert inspect.signature(alexnet_lab.predict).parameters["framework"].default == DEFAULT_FRAMEWORK
    code = ("import sys, alexnet_lab; print(__import__('json').dumps(sorted(m for m in ('alexnet_lab.core.bundle', "
            "'alexnet_lab.frameworks.protocol', 'alexnet_lab.frameworks.registry') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["alexnet_lab.frameworks.registry"]


def test_torch_model_in_one_call_matches_torchvision(offline_registry, torchvision_pth):
    import torch
    import torchvision

    reference = torchvision.models.alexnet()
    reference.load_state_dict(torch.load(torchvision_pth, weights_only=True))
    model = alexnet_lab.alexnet("torch", weights="imagenet").eval()
    assert isinstance(model, torch.nn.Module)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), reference.eval()(x).numpy(), atol=1e-4, rtol=1e-4)


def test_new_head_keeps_every_other_layer(offline_registry):
    import torch

    full = alexnet_lab.alexnet("torch", weights="DEFAULT")
    tuned = alexnet_lab.alexnet("torch", weights="imagenet", num_classes=10)
    assert tuned.classifier[-1].out_features == 10
    assert torch.equal(tuned.features[0].weight, full.features[0].weight)
    assert torch.equal(tuned.classifier[4].weight, full.classifier[4].weight)


def test_keras_model_in_one_call_agrees_with_the_torch_one(torchvision_pth):
    import keras
    import torch

    model = alexnet_lab.alexnet("keras", weights=str(torchvision_pth), num_classes=1000)
    assert isinstance(model, keras.Model)
    torch_model = alexnet_lab.alexnet("torch", weights=str(torchvision_pth)).eval()
    batch = np.random.default_rng(1).normal(size=(2, 224, 224, 3)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(batch.transpose(0, 3, 1, 2))).numpy()
    got = np.asarray(model.predict_on_batch(batch))
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_transforms_are_the_weights_preprocessing(image_paths):
    from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET, preprocess
    from alexnet_lab.data.images import read_image_rgb

    imagenet = alexnet_lab.transforms("imagenet")
    assert imagenet.spec == TORCHVISION_IMAGENET and alexnet_lab.transforms("bvlc").spec == BVLC_CAFFE
    out = imagenet(image_paths[1])
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, preprocess(read_image_rgb(image_paths[1]), TORCHVISION_IMAGENET))


def test_predict_load_save_and_listing(offline_registry, image_paths, tmp_path):
    rows = alexnet_lab.predict(image_paths[:2], weights="imagenet", top=3, precision="fp32")
    assert len(rows) == 2 and [p["rank"] for p in rows[0]] == [1, 2, 3]
    probabilities = [p["probability"] for p in rows[0]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
    bundle = alexnet_lab.load_weights("imagenet")
    path = alexnet_lab.save_weights(bundle, tmp_path / "w.safetensors")
    assert alexnet_lab.load_weights(path).meta.variant == "owt"
    assert "imagenet" in alexnet_lab.list_weights() or "torchvision" in alexnet_lab.list_weights()
    assert "alexnet_owt" in alexnet_lab.list_models()


def test_bad_arguments_say_what_to_do(offline_registry):
    with pytest.raises(UserInputError, match="framework"):
        alexnet_lab.alexnet("jax")
    with pytest.raises(UserInputError, match="variant"):
        alexnet_lab.alexnet("torch", weights="imagenet", variant="cifar")
    with pytest.raises(AttributeError):
        alexnet_lab.no_such_thing  # noqa: B018
