"""torchvision's and timm's interfaces on the PyTorch AlexNet, checked the way their own suites
check models: construction variants and output shapes, bit-identical init and state-dict keys,
pretrained loading through a builder, feature extraction against torchvision's fx extractor,
fx tracing then TorchScript, timm's head methods, head swap then one fine-tuning step.

Registry names resolve offline: `fetch` is replaced by the generated torchvision file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.frameworks.torch import (
    AlexNet,
    alexnet,
    alexnet_cifar,
    alexnet_original,
    create_model,
    list_models,
    to_canonical,
)


@pytest.fixture()
def offline_registry(monkeypatch, torchvision_pth):
    """Registry names ('imagenet', 'IMAGENET1K_V1', pretrained=True) load the generated file."""
    monkeypatch.setattr("alexnet_lab.weights.download.fetch", lambda entry: torchvision_pth)
    return torchvision_pth


def test_random_init_and_keys_match_torchvision():
    torch.manual_seed(3)
    ours = alexnet().state_dict()
    torch.manual_seed(3)
    theirs = torchvision.models.alexnet().state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("build, size, classes", [
    (lambda: AlexNet(num_classes=10), 64, 10),
    (lambda: alexnet(num_classes=7), 96, 7),
    (lambda: alexnet_original(num_classes=3), 227, 3),
    (lambda: alexnet_cifar(), 32, 10),
    (lambda: create_model("alexnet_cifar", num_classes=4, in_chans=1), 32, 4),
    (lambda: create_model("alexnet_owt", num_classes=0), 64, 4096),
])
def test_construction_variants_and_shapes(build, size, classes):
    model = build().eval()
    channels = model.pretrained_cfg["input_size"][0]
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, classes)
    assert model.num_classes == (0 if classes == 4096 else classes)


def test_torchvision_builder_loads_files_and_registry_names(offline_registry):
    file_state = torch.load(offline_registry, weights_only=True)
    for weights in (str(offline_registry), "IMAGENET1K_V1"):
        model = alexnet(weights=weights, progress=False)
        assert all(torch.equal(model.state_dict()[k], file_state[k]) for k in file_state)
    assert model.pretrained_cfg["tag"] == "tv_in1k" and model.pretrained_cfg["mean"] == (0.485, 0.456, 0.406)
    with pytest.raises(UserInputError, match="num_classes=10 does not match the weights' 1000 classes"):
        alexnet(weights="imagenet", num_classes=10)


def test_timm_create_model_pretrained_new_head_and_list_models(offline_registry):
    file_state = torch.load(offline_registry, weights_only=True)
    model = create_model("alexnet_owt.tv_in1k", pretrained=True, num_classes=10)
    state = model.state_dict()
    assert all(torch.equal(state[k], file_state[k]) for k in file_state if not k.startswith("classifier.6"))
    assert state["classifier.6.weight"].shape == (10, 4096)
    cfg = model.default_cfg
    assert cfg is model.pretrained_cfg and cfg["num_classes"] == 10 and cfg["input_size"] == (3, 224, 224)
    assert list_models() == ["alexnet", "alexnet_cifar", "alexnet_cifar_wide", "alexnet_original", "alexnet_owt"]
    assert list_models("*owt*", pretrained=True) == ["alexnet_owt.tv_in1k"]
    import alexnet_lab

    assert alexnet_lab.list_models() == list_models() and alexnet_lab.create_model is create_model


def test_timm_head_methods():
    model = create_model("alexnet_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features, 4, 4)
        assert torch.equal(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
        model.reset_classifier(5)
        assert model(x).shape == (2, 5) and model.num_classes == 5 and model.pretrained_cfg["num_classes"] == 5
        model.reset_classifier(0)
        assert model(x).shape == (2, model.head_hidden_size) and model.num_classes == 0
    assert "fc8" not in to_canonical(model)  # no head, no fc8 weights


def test_features_only_and_intermediates_match_torchvision_extractor():
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet().eval()
    ours = AlexNet().eval()
    ours.load_state_dict(theirs.state_dict())
    nodes = {"features.1": "relu1", "features.4": "relu2", "features.7": "relu3", "features.9": "relu4",
             "features.11": "relu5", "features.12": "pool5"}
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        expected = create_feature_extractor(theirs, list(nodes))(x)
        final, maps = ours.forward_intermediates(x, indices=[*range(5), "pool5"])
        only = create_model("alexnet", features_only=True, out_indices=(1, 3))
        only.model.load_state_dict(theirs.state_dict())
        two = only(x)
    assert [torch.equal(m, expected[node]) for m, node in zip(maps, nodes)] == [True] * 6
    assert torch.equal(final, expected["features.12"])
    assert [t.shape[1] for t in two] == [info["num_chs"] for info in only.feature_info] == [192, 256]
    assert [info["reduction"] for info in ours.feature_info] == [4, 8, 16, 16, 16]
    nhwc = ours.forward_intermediates(x, indices=1, output_fmt="NHWC", intermediates_only=True)
    assert len(nhwc) == 1 and torch.equal(nhwc[0], maps[4].permute(0, 2, 3, 1))


@pytest.mark.parametrize("variant", ["owt", "original"])
def test_fx_trace_then_torchscript(variant):
    model = AlexNet(variant, num_classes=10).eval()
    size = 227 if variant == "original" else 64
    x = torch.randn(1, 3, size, size)
    scripted = torch.jit.script(torch.fx.symbolic_trace(model))
    direct = torch.jit.script(model)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x)) and torch.allclose(direct(x), model(x))


def test_head_swap_is_followed_then_one_finetune_step():
    torch.manual_seed(0)
    model = create_model("alexnet_cifar", num_classes=10)
    old = model.layer("fc8")
    model.classifier[-1] = nn.Linear(model.head_hidden_size, 3)  # the usual torchvision-style swap
    assert model.layer("fc8") is model.classifier[-1] is not old and model.num_classes == 3
    assert to_canonical(model)["fc8.weight"].shape == (3, 1024)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(model.state_dict_prefix("fc8"))
    conv1 = model.layer("conv1").weight.detach().clone()
    fc8 = model.layer("fc8").weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert torch.equal(model.layer("conv1").weight, conv1) and not torch.equal(model.layer("fc8").weight, fc8)


def test_user_errors_say_what_to_do():
    with pytest.raises(UserInputError, match="Did you mean 'alexnet_owt'"):
        create_model("alexnet_ow")
    with pytest.raises(UserInputError, match="no pretrained weights"):
        create_model("alexnet_cifar", pretrained=True)
    with pytest.raises(UserInputError, match="unexpected arguments \\['drop_path_rate'\\]"):
        create_model("alexnet", drop_path_rate=0.1)
    with pytest.raises(UserInputError, match="out of range"):
        create_model("alexnet_cifar", features_only=True, out_indices=(7,))
    with pytest.raises(UserInputError, match="Did you mean 'fc8'"):
        AlexNet("cifar", num_classes=2).layer("fc9")
    assert np.isfinite(AlexNet("cifar", num_classes=2).pretrained_cfg["std"]).all()
