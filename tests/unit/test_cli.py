"""The `alexnet` command line as users run it (fresh processes): contract shapes and errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def predictions(image_paths, torchvision_pth):
    out = {}
    for framework in ("torch", "keras"):
        result = run_cli("predict", *map(str, image_paths[:3]), "--weights", str(torchvision_pth),
                         "--framework", framework, "--json")
        assert result.returncode == 0, result.stderr
        out[framework] = json.loads(result.stdout)
    return out


def test_predict_json_contract(predictions, image_paths):
    doc = predictions["torch"]
    assert [entry["image"] for entry in doc] == [str(p) for p in image_paths[:3]]
    first = doc[0]["predictions"]
    assert [p["rank"] for p in first] == [1, 2, 3, 4, 5]
    # a 1000-class file without metadata knows ImageNet's WordNet IDs: `wnid` beside `label` (#31)
    assert set(first[0]) == {"rank", "index", "label", "wnid", "probability"}
    from alexnet_lab.core.wordnet import imagenet_class_ids

    assert all(p["wnid"] == imagenet_class_ids()[p["index"]] for p in first)
    assert first[0]["probability"] >= first[1]["probability"]


def test_predict_torch_and_keras_agree(predictions):
    for torch_entry, keras_entry in zip(predictions["torch"], predictions["keras"]):
        t, k = torch_entry["predictions"], keras_entry["predictions"]
        assert [p["label"] for p in t] == [p["label"] for p in k]
        assert max(abs(a["probability"] - b["probability"]) for a, b in zip(t, k)) <= 1e-4


def test_info_reports_variant_preprocessing_and_hash(torchvision_pth):
    result = run_cli("info", str(torchvision_pth), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["variant"] == "owt" and info["num_classes"] == 1000
    assert info["params"] == info["expected_params"] == 61_100_840
    assert info["preprocessing"]["crop"] == 224 and len(info["sha256"]) == 64
    text = run_cli("info", str(torchvision_pth)).stdout
    assert "resize shorter side to 256" in text and "61,100,840" in text


@pytest.mark.parametrize(
    "args, expected",
    [
        (["predict", "IMG", "--weights", "nope.pth"], "not found"),
        (["predict", "IMG", "--weights", "WEIGHTS", "--framework", "kears"], "Did you mean 'keras'"),
        (["predict", "TEXT", "--weights", "WEIGHTS"], "not in an image format"),
        (["predict", "missing.png", "--weights", "WEIGHTS"], "missing.png"),
        (["info", "BADSHAPES"], "expected shape"),
        (["predict", "IMG"], "--weights"),
        (["fly"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, expected, tmp_path, image_paths, torchvision_pth):
    import torch
    import torchvision

    text_file = tmp_path / "notes.jpg"
    text_file.write_text("this is not an image")
    state = torchvision.models.alexnet().state_dict()
    state["features.0.weight"] = torch.zeros(64, 3, 7, 7)
    torch.save(state, tmp_path / "bad.pth")
    mapping = {"IMG": str(image_paths[0]), "WEIGHTS": str(torchvision_pth), "TEXT": str(text_file),
               "BADSHAPES": str(tmp_path / "bad.pth")}
    result = run_cli(*[mapping.get(a, a) for a in args])
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0], lines[0]
