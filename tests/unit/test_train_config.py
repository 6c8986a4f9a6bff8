"""Run configuration, recipes, phases and schedules (no framework)."""

from __future__ import annotations

import json

import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.spec import get_arch
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.phases import plan_phases
from alexnet_lab.train.recipes import RECIPES, get_recipe
from alexnet_lab.train.schedules import lr_factor


def test_config_round_trip_and_validation():
    config = RunConfig(strategy="finetune", weights="w.pth", train_layers=("fc7", "fc8"))
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(UserInputError, match="Did you mean 'two-phase'"):
        RunConfig(strategy="two_phase")
    with pytest.raises(UserInputError, match="pretrained weights"):
        RunConfig(strategy="head")
    with pytest.raises(UserInputError, match="--epochs > --head-epochs"):
        RunConfig(strategy="two-phase", weights="w.pth", epochs=2, head_epochs=2)


def test_recipes_build_valid_configs():
    for recipe in RECIPES.values():
        RunConfig(**recipe.as_dict())
    assert get_recipe("cifar10-scratch").as_dict()["variant"] == "cifar"
    with pytest.raises(UserInputError, match="Did you mean"):
        get_recipe("cifar10-scrach")


def test_phases_per_strategy():
    spec = get_arch("owt")
    assert plan_phases(RunConfig(), spec, ())[0].trainable == spec.layer_names
    head = plan_phases(RunConfig(strategy="head", weights="w"), spec, ("fc8",))
    assert [p.trainable for p in head] == [("fc8",)]
    two = plan_phases(RunConfig(strategy="two-phase", weights="w", epochs=5, head_epochs=2, unfreeze="3", lr=0.01),
                      spec, ("fc8",))
    assert [p.epochs for p in two] == [2, 3]
    assert dict(two[1].layer_lrs) == pytest.approx({"fc6": 1e-4, "fc7": 1e-4, "fc8": 1e-3})
    with pytest.raises(UserInputError, match="Did you mean 'fc7'"):
        plan_phases(RunConfig(strategy="finetune", weights="w", train_layers=("fc_7",)), spec, ())


def test_batchnorm_layers_follow_their_conv():
    phases = plan_phases(RunConfig(strategy="finetune", weights="w", train_layers=("conv5", "fc8")), get_arch("cifar"), ())
    assert phases[0].trainable == ("conv5", "bn5", "fc8")


def test_schedules():
    assert lr_factor(0, 100, "cosine", warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(10, 100, "cosine", warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(99, 100, "cosine") < 0.01
    assert lr_factor(55, 100, "onecycle", warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor(25, 100, "step", step_every=10) == pytest.approx(0.01)
    assert lr_factor(50, 100, "constant") == 1.0


def test_resume_may_change_where_the_run_executes_and_records_it(tmp_path):
    """--device, --num-workers and --data-dir say where the run executes, not what it computes: a
    GPU run continues on a CPU-only machine. They are allowed on --resume and recorded."""
    from alexnet_lab.train.resume import config_document, resume_config

    saved = RunConfig(data="synthetic", variant="cifar", epochs=3, device="cuda", num_workers=2, out=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    config, extension = resume_config(RunConfig(out=str(tmp_path)), {"device": "cpu", "num_workers": 0})
    assert (config.device, config.num_workers, config.epochs, config.resume) == ("cpu", 0, 3, True)
    assert extension["runtime"] == {"device": {"was": "cuda", "now": "cpu"}, "num_workers": {"was": 2, "now": 0}}
    doc = json.loads(config_document(tmp_path, config, extension))
    assert doc["device"] == "cpu" and doc["extensions"][-1]["runtime"]["device"]["was"] == "cuda"
    unchanged, none = resume_config(RunConfig(out=str(tmp_path)), {"device": "cuda"})
    assert none is None and unchanged.device == "cuda"


def test_moving_average_and_flip_fields_flags_and_recipes():
    import argparse

    from alexnet_lab.cli.train import add_train, config_from_args

    assert get_recipe("cifar10-wide").as_dict() == {**get_recipe("cifar10-best").as_dict(), "variant": "cifar-wide",
                                                    "ema_decay": 0.999, "conv1_init": "whiten"}
    assert all(get_recipe(name).as_dict()["eval_flip"] for name in ("cifar10-fast", "cifar10-best"))
    assert "ema_decay" not in get_recipe("cifar10-fast").as_dict()  # measured without gain (docs/recipes.md)
    fast = get_recipe("cifar10-fast").as_dict()
    assert (fast["conv1_init"], fast["augment"], fast["epochs"]) == ("whiten", "flip", 5)
    parser = argparse.ArgumentParser()
    add_train(parser.add_subparsers())
    config = config_from_args(parser.parse_args(["train", "--recipe", "cifar10-fast", "--ema-decay", "0.99",
                                                 "--no-eval-flip"]))
    assert (config.ema_decay, config.eval_flip) == (0.99, False)
    old = RunConfig().to_dict()
    del old["ema_decay"], old["eval_flip"], old["conv1_init"]  # a config.json from before the fields: all off
    resumed = RunConfig.from_dict(old)
    assert (resumed.ema_decay, resumed.eval_flip, resumed.conv1_init) == (0.0, False, "random")
    with pytest.raises(UserInputError, match="--ema-decay must be >= 0 and < 1"):
        RunConfig(ema_decay=1.0)
    with pytest.raises(UserInputError, match="--distribute"):
        RunConfig(framework="keras", distribute="mirrored", ema_decay=0.9)
