"""Hugging Face Hub weights: `convert --to hf` writes a Hub-ready folder, and `hf://OWNER/REPO[@REVISION]`
(or timm's `hf-hub:`) loads it back through huggingface_hub's cache, offline.

The Hub cannot be reached here: the folder is placed into a Hub cache built in huggingface_hub's own
on-disk layout (tests/hub_cache.py), with two revisions, and every load runs with HF_HUB_OFFLINE=1 and
HF_HUB_CACHE pointing at it: in a fresh CLI process (`predict --json` in both frameworks), and in this
process through the API and the builders (huggingface_hub's constants patched, as it reads them once).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from tests.conftest import run_cli, smooth_image
from tests.hub_cache import add_folder, add_revision

REPO_ID = "alice/alexnet-cifar"
MAIN, OLD = "1" * 40, "0" * 40  # the commits of the two revisions
LABELS = tuple(f"kind {i}" for i in range(10))


def _bundle(scale: float):
    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.core.spec import get_arch

    rng = np.random.default_rng(3)
    tensors = {k: rng.standard_normal(s).astype(np.float32) * 0.05 for k, s in get_arch("cifar").canonical_shapes(10).items()}
    for key in tensors:
        if key.endswith("running_var"):
            tensors[key] = np.abs(tensors[key]) + 1.0
    tensors["fc8.weight"] = tensors["fc8.weight"] * scale  # spread the probabilities; the revisions differ here
    spec = TORCHVISION_IMAGENET.__class__(**{**TORCHVISION_IMAGENET.to_dict(), "resize": 36, "crop": 32})
    return WeightBundle(tensors, ModelMeta("cifar", LABELS, spec, source="/home/someone/private/model.pth"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Weight files, the folder `convert --to hf` wrote, and a Hub cache holding it at two revisions."""
    from alexnet_lab.weights import save_weights
    from alexnet_lab.weights.hub_folder import write_hub_folder

    root = tmp_path_factory.mktemp("hub")
    weights = save_weights(_bundle(40.0), root / "weights.safetensors")
    old = save_weights(_bundle(-40.0), root / "old.safetensors")
    result = run_cli("convert", str(weights), str(root / "folder"), "--to", "hf")
    assert result.returncode == 0, result.stderr
    write_hub_folder(_bundle(-40.0), root / "old-folder")
    cache = root / "cache"
    add_folder(cache, REPO_ID, OLD, root / "old-folder", refs=("v1",))
    add_folder(cache, REPO_ID, MAIN, root / "folder", refs=("main",))
    add_revision(cache, "alice/no-weights", "2" * 40, {"config.json": b"{}", "pytorch_model.bin": b"pickle"},
                 refs=("main",))
    image = root / "picture.png"
    Image.fromarray(smooth_image(np.random.default_rng(7), 48, 40)).save(image)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    return {"weights": weights, "old": old, "folder": root / "folder", "cache": cache, "image": image, "env": env}


@pytest.fixture()
def offline(world, monkeypatch):
    """This process reads the test cache only: huggingface_hub reads its environment once, at import."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(world["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _predict(world, weights: str, framework: str) -> list:
    result = run_cli("predict", str(world["image"]), "--weights", weights, "--json", "--framework", framework,
                     "--precision", "fp32", "--top", "3", env=world["env"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]["predictions"]


@pytest.mark.parametrize("framework, reference", [("torch", f"hf://{REPO_ID}"), ("keras", f"hf-hub:{REPO_ID}")])
def test_predict_through_the_hub_equals_the_original_file(world, framework, reference):
    expected = _predict(world, str(world["weights"]), framework)
    assert _predict(world, reference, framework) == expected
    assert expected[0]["label"] in LABELS


@pytest.mark.parametrize("reference, which", [
    (f"hf://{REPO_ID}", "weights"), (f"hf://{REPO_ID}@main", "weights"), (f"hf://{REPO_ID}@{MAIN}", "weights"),
    (f"hf://{REPO_ID}@v1", "old"), (f"hf://{REPO_ID}@{OLD}", "old"), (f"hf-hub:{REPO_ID}@v1", "old"),
])
def test_a_revision_loads_that_revisions_tensors(world, offline, reference, which):
    from alexnet_lab.weights import load_weights

    got, expected = load_weights(reference), load_weights(world[which])
    assert got.meta.categories == LABELS and got.meta.source == "model.pth"  # a public folder keeps no private path
    assert all(np.array_equal(got.tensors[k], expected.tensors[k]) for k in expected.tensors)


def test_the_one_call_api_and_the_builders_load_hub_weights(world, offline):
    import torch

    import alexnet_lab
    from alexnet_lab.frameworks.torch.hub import alexnet_cifar, create_model

    reference = alexnet_lab.alexnet("torch", weights=str(world["weights"])).state_dict()
    for model in (alexnet_lab.alexnet("torch", weights=f"hf://{REPO_ID}"), alexnet_cifar(weights=f"hf://{REPO_ID}"),
                  create_model(f"hf-hub:{REPO_ID}", pretrained=True),
                  create_model("alexnet_cifar", pretrained=f"hf://{REPO_ID}")):
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.values()))
    assert create_model(f"hf-hub:{REPO_ID}", pretrained=True).pretrained_cfg["hf_hub_id"] == REPO_ID
    assert alexnet_lab.transforms(f"hf://{REPO_ID}").spec.crop == 32


def test_a_repository_missing_from_the_cache_offline_is_one_line(world):
    result = run_cli("info", "hf://alice/elsewhere", env=world["env"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "not in the Hugging Face cache" in line and "HF_HUB_OFFLINE" in line
    assert "hf download alice/elsewhere" in line


def test_a_revision_missing_from_the_cache_names_the_cached_ones(world, offline):
    from alexnet_lab.weights import load_weights

    with pytest.raises(UserInputError, match=r"revision 'v9' of alice/alexnet-cifar .* \(cached: main, v1\)"):
        load_weights(f"hf://{REPO_ID}@v9")


def test_a_repository_without_model_safetensors_says_what_it_holds(world, offline):
    from alexnet_lab.weights import load_weights

    with pytest.raises(UserInputError, match=r"holds no model.safetensors \(config.json, pytorch_model.bin\)"):
        load_weights("hf://alice/no-weights")


@pytest.mark.parametrize("text, repo_id, revision", [
    ("hf://a/b", "a/b", None), ("hf://a.b/c-d_e@v1.0", "a.b/c-d_e", "v1.0"), ("hf-hub:a/b", "a/b", None),
    ("HF://a/b@refs/pr/1", "a/b", "refs/pr/1"),
])
def test_hub_references_parse(text, repo_id, revision):
    from alexnet_lab.weights.hub import HubRef, parse_hub_ref

    assert parse_hub_ref(text) == HubRef(repo_id, revision)


@pytest.mark.parametrize("text", ["hf://a", "hf://a/b/c", "hf://a/b@", "hf://a--x/b", "hf://a/b c", "hf-hub:/b"])
def test_bad_hub_references_are_refused(text):
    from alexnet_lab.weights.hub import parse_hub_ref

    with pytest.raises(UserInputError, match="expected a Hub reference hf://OWNER/REPO"):
        parse_hub_ref(text)


# --- the folder: model card, config.json and the output policy --------------------------------


def _front_matter(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_config_json_names_the_classes_and_timms_pretrained_cfg(world):
    config = json.loads((world["folder"] / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(LABELS)}
    assert config["label2id"] == {name: i for i, name in enumerate(LABELS)}
    assert config["architecture"] == "alexnet_cifar" and config["num_classes"] == 10
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 32, 32] and cfg["pool_size"] == [4, 4]
    assert (cfg["first_conv"], cfg["classifier"]) == ("conv1", "fc8")
    assert config["preprocessing"]["crop"] == 32
    front = _front_matter(world["folder"])
    assert front["library_name"] == "alexnet-lab" and "image-classification" in front["tags"]
    assert front["preprocessing"]["crop"] == 32 and "model-index" not in front  # no figures: none claimed


def test_the_card_holds_the_runs_evaluation(tmp_path, world):
    from alexnet_lab.evaluate.hub_export import export_hub_folder
    from alexnet_lab.evaluate.metrics import evaluate_logits

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(world["weights"].read_bytes())
    logits = np.eye(10, dtype=np.float32)[[0, 1, 2, 3, 4, 5, 6, 7, 8, 0]] * 5
    logits[9, 9] = 1.0  # the last image: class 0 first, its own class 9 second
    result = evaluate_logits(logits, np.arange(10), LABELS)
    (run / "eval.json").write_text(json.dumps(result.to_json_dict()))
    (run / "config.json").write_text(json.dumps({"data": "cifar10", "strategy": "scratch", "framework": "torch"}))
    export_hub_folder(str(run), tmp_path / "out")
    front = _front_matter(tmp_path / "out")
    assert front["datasets"] == ["uoft-cs/cifar10"] and front["metrics"] == ["accuracy"]
    values = {m["name"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert values == {"top-1 accuracy": 90.0, "top-5 accuracy": 100.0}


def test_the_card_of_registry_weights_holds_the_published_figures(tmp_path):
    from alexnet_lab.weights.hub_folder import write_hub_folder

    write_hub_folder(_bundle(1.0).with_meta(source="torchvision"), tmp_path / "tv")
    front = _front_matter(tmp_path / "tv")
    assert front["license"] == "bsd-3-clause" and front["datasets"] == ["imagenet-1k"]
    values = {m["name"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert values == {"top-1 accuracy": 56.522, "top-5 accuracy": 79.066}
    # a recorded hash that contradicts the registry's: no published figures are claimed
    write_hub_folder(_bundle(1.0).with_meta(source="torchvision", source_sha256="f" * 64), tmp_path / "other")
    assert "model-index" not in _front_matter(tmp_path / "other")


def test_an_earlier_folder_needs_force_and_force_keeps_other_files(tmp_path, world):
    out = tmp_path / "out"
    assert run_cli("convert", str(world["weights"]), str(out), "--to", "hf").returncode == 0
    (out / "notes.txt").write_text("mine\n")
    (out / "README.md").write_text("an edited card\n")
    result = run_cli("convert", str(world["old"]), str(out), "--to", "hf")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "already holds this command's earlier output" in line and "--force" in line
    assert (out / "README.md").read_text() == "an edited card\n"
    assert run_cli("convert", str(world["old"]), str(out), "--to", "hf", "--force").returncode == 0
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "README.md").read_text().startswith("---\n")


def test_the_folder_is_never_written_inside_its_input(tmp_path, world):
    from alexnet_lab.evaluate.hub_export import export_hub_folder

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(world["weights"].read_bytes())
    with pytest.raises(UserInputError, match="inside the input folder"):
        export_hub_folder(str(run), run / "hub")
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors"]
