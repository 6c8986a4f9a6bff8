"""timm's training-side model interface on the PyTorch AlexNet: get_classifier, group_matcher,
set_grad_checkpointing, and the pool_size / first_conv / classifier keys of pretrained_cfg."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn

from alexnet_lab.frameworks.torch.model import AlexNet

SIZES = {"owt": 64, "original": 227, "cifar": 32}  # small inputs where the variant allows one


def _patterns(matcher: dict) -> list[tuple[str, str]]:
    """(group, regex) for every regex of a timm dict-style group matcher."""
    found = []
    for group, spec in matcher.items():
        found += [(group, spec)] if isinstance(spec, str) else [(group, regex) for regex, _ in spec]
    return found


def test_get_classifier_is_fc8():
    model = AlexNet("owt", num_classes=10)
    assert model.get_classifier() is model.classifier[6] is model.layer("fc8")
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity)


@pytest.mark.parametrize("variant", list(SIZES))
@pytest.mark.parametrize("coarse", [False, True])
def test_group_matcher_covers_every_parameter_exactly_once(variant, coarse):
    model = AlexNet(variant, num_classes=10)
    patterns = _patterns(model.group_matcher(coarse=coarse))
    groups = {}
    for name, _ in model.named_parameters():
        hits = [(group, regex) for group, regex in patterns if re.match(regex, name)]
        assert len(hits) == 1, (name, hits)
        groups.setdefault(hits[0][1], []).append(name)
    layer_of = {model.state_dict_prefix(n): n for n in model.layer_names}
    stem = next(regex for group, regex in patterns if group == "stem")
    assert {layer_of[n.rsplit(".", 1)[0]] for n in groups[stem]} <= {"conv1", "bn1"}
    head = next(regex for group, regex in patterns if group == "head")
    assert {layer_of[n.rsplit(".", 1)[0]] for n in groups[head]} == {"fc6", "fc7", "fc8"}
    assert len(groups) == (3 if coarse else 6)  # stem, conv2..conv5 (one group when coarse), head


@pytest.mark.parametrize("variant", ["cifar", "original"])  # BatchNorm; grouped convs and LRN
def test_grad_checkpointing_gives_the_same_gradients_and_statistics(variant):
    torch.manual_seed(0)
    plain = AlexNet(variant, num_classes=10).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing()
    calls = []
    checkpointed.layer("conv2").register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(3, 3, SIZES[variant], SIZES[variant])
    for model in (plain, checkpointed):
        torch.manual_seed(1)  # the same dropout masks
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
    assert len(calls) == 2  # conv2 ran again in the backward pass: it was checkpointed
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=0, atol=1e-6), name
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.equal(a, b), name  # running statistics updated once, not again by the recomputation


def test_grad_checkpointing_is_off_in_eval_and_keeps_the_model_scriptable():
    model = AlexNet("cifar", num_classes=10)
    model.set_grad_checkpointing()
    calls = []
    model.layer("conv1").register_forward_hook(lambda *_: calls.append(1))
    model.eval()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert len(calls) == 1
    fresh = AlexNet("cifar", num_classes=10).eval()  # (a Python hook cannot be scripted)
    fresh.set_grad_checkpointing()
    scripted = torch.jit.script(fresh)
    assert torch.allclose(scripted(x), fresh(x))


@pytest.mark.parametrize("variant, pool", [("owt", 6), ("original", 6), ("cifar", 4)])
def test_pretrained_cfg_names_pool_size_first_conv_and_classifier(variant, pool):
    model = AlexNet(variant, num_classes=10)
    cfg = model.pretrained_cfg
    assert cfg["pool_size"] == (pool, pool)
    size = cfg["input_size"][1]
    assert model.forward_features(torch.zeros(1, 3, size, size)).shape[-2:] == cfg["pool_size"]
    assert isinstance(model.layer(cfg["first_conv"]), nn.Conv2d)
    assert model.layer(cfg["classifier"]) is model.get_classifier()
