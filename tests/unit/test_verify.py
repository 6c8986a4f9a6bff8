"""`alexnet verify`: each check passes a good file and fails a damaged one, naming the check.

The files are full-size 'owt' weights drawn like PyTorch's default initialisation and written
as .safetensors (no framework import needed to read them, which keeps the CLI runs quick).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core.bundle import ModelMeta, WeightBundle, imagenet_categories
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
from alexnet_lab.core.spec import get_arch
from alexnet_lab.verify import VerifyOptions, render_json, render_table, run_verify
from alexnet_lab.verify.parity import generated_images
from alexnet_lab.verify.provenance import check_hash
from alexnet_lab.weights.files import save_weights
from alexnet_lab.weights.registry import WeightEntry
from tests.conftest import run_cli

QUICK = VerifyOptions(framework_parity=False)


def _torch_like(seed: int = 0) -> dict[str, np.ndarray]:
    """uniform(+-1/sqrt(fan_in)) for weights and biases, as torch.nn.Conv2d / Linear start."""
    rng = np.random.default_rng(seed)
    shapes = get_arch("owt").canonical_shapes(1000)
    tensors = {}
    for key, shape in shapes.items():
        fan_in = math.prod(shapes[key.replace(".bias", ".weight")][1:])
        tensors[key] = rng.uniform(-1, 1, size=shape).astype(np.float32) / np.float32(math.sqrt(fan_in))
    return tensors


def _write(folder: Path, name: str, tensors: dict[str, np.ndarray], **meta: object) -> Path:
    fields = {"source": name, "preprocess": TORCHVISION_IMAGENET, **meta}
    bundle = WeightBundle(tensors, ModelMeta("owt", imagenet_categories(), **fields))
    return save_weights(bundle, folder / name)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_LAB_CACHE", str(tmp_path / "cache"))  # no trust-on-first-use records from the user


@pytest.fixture(scope="module")
def good_tensors() -> dict[str, np.ndarray]:
    return _torch_like()


@pytest.fixture(scope="module")
def files(tmp_path_factory, good_tensors) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("verify")
    nan = dict(good_tensors, **{"conv3.weight": good_tensors["conv3.weight"].copy()})
    nan["conv3.weight"][1, 2, 0, 0] = np.nan
    nudged = dict(good_tensors, **{"fc7.bias": good_tensors["fc7.bias"] + np.float32(1e-6)})
    return {
        "good": _write(folder, "good.safetensors", good_tensors),
        "nan": _write(folder, "nan.safetensors", nan),
        "zero": _write(folder, "zero.safetensors",
                       dict(good_tensors, **{"conv4.weight": np.zeros((256, 384, 3, 3), np.float32)})),
        "nudged": _write(folder, "nudged.safetensors", nudged),
        "other": _write(folder, "other.safetensors", _torch_like(seed=1)),
        "caffe-meta": _write(folder, "caffe-meta.safetensors", good_tensors, preprocess=BVLC_CAFFE),
        "huge-fc6": _write(folder, "huge.safetensors", dict(good_tensors, **{"fc6.weight": good_tensors["fc6.weight"] * 1e4})),
        "big-fc8": _write(folder, "big.safetensors", dict(good_tensors, **{"fc8.weight": good_tensors["fc8.weight"] * 300})),
    }


def _statuses(report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def test_generated_images_are_deterministic():
    first, again = generated_images(3), generated_images(3)
    assert len(first) == 3 and all(a.shape == (256, 256, 3) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])


def test_good_file_passes_every_check_including_framework_parity(files, image_paths, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in image_paths[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "notes.txt").write_text("not an image: ignored")
    report = run_verify(files["good"], VerifyOptions(images=str(folder)))
    assert report.passed, render_table(report)
    assert _statuses(report) == {"metadata": "PASS", "structure": "PASS", "finite": "PASS", "degenerate": "PASS", "scale": "PASS",
                                 "digest": "PASS", "hash": "SKIP", "framework-parity": "PASS", "fingerprint": "PASS"}
    parity = next(c for c in report.checks if c.name == "framework-parity").figures
    assert parity["num_images"] == 2 and parity["top1_agreement"] == 1.0
    assert parity["max_abs_logit_diff"] <= 1e-4 * parity["logit_scale"]


@pytest.mark.parametrize("name, check, words", [
    ("nan", "finite", "conv3.weight: 1 NaN"),
    ("zero", "degenerate", "conv4.weight is all zero"),
    ("huge-fc6", "scale", "fc6.weight"),
])
def test_damaged_files_fail_the_right_check(files, name, check, words):
    report = run_verify(files[name], QUICK)
    assert not report.passed and report.failed == (check,), render_table(report)
    assert words in next(c.detail for c in report.checks if c.name == check)


def test_unusual_but_plausible_scale_is_a_warning(files):
    report = run_verify(files["big-fc8"], QUICK)
    assert report.passed and report.status_of("scale") == "WARN"


def test_against_names_the_differing_tensors(files):
    report = run_verify(files["good"], VerifyOptions(framework_parity=False, against=str(files["nudged"])))
    assert report.failed == ("against",)
    against = next(c for c in report.checks if c.name == "against")
    assert "1 of 16 tensors" in against.detail and "fc7.bias" in against.detail
    assert 0 < against.figures["layer_max_abs_diff"]["fc7.bias"] < 1e-5
    assert against.figures["layer_max_abs_diff"]["conv1.weight"] == 0.0
    tolerant = run_verify(files["good"], VerifyOptions(framework_parity=False, against=str(files["nudged"]), tolerance=1e-5))
    assert tolerant.passed and tolerant.status_of("against") == "PASS"
    assert run_verify(files["good"], VerifyOptions(framework_parity=False, against=str(files["other"]))).failed == ("against",)


def test_against_keeps_metadata_differences_apart(files):
    report = run_verify(files["good"], VerifyOptions(framework_parity=False, against=str(files["caffe-meta"])))
    assert report.passed
    assert report.status_of("against") == "PASS" and report.status_of("against-metadata") == "WARN"


def test_wrong_shapes_fail_structure_and_skip_the_rest(tmp_path, good_tensors):
    import torch

    from alexnet_lab.frameworks.torch.io import bundle_state_dict

    good = WeightBundle(good_tensors, ModelMeta("owt", imagenet_categories(), TORCHVISION_IMAGENET))
    state = bundle_state_dict(good)
    state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    report = run_verify(tmp_path / "bad.pth", QUICK)
    assert report.failed == ("structure",)
    assert "conv2.weight" in report.checks[0].detail
    assert {c.status for c in report.checks[1:]} == {"SKIP"}


def _entry(**hashes: str) -> WeightEntry:
    return WeightEntry(name="testweights", variant="owt", url="http://127.0.0.1/never", filename="alexnet-test.pth",
                       source_format="torchvision-pth", preprocess=TORCHVISION_IMAGENET, **hashes)


def test_hash_against_registry_entries(tmp_path, good_tensors):
    digest = hashlib.sha256(b"the original registry file").hexdigest()
    # converted from the registry file: the metadata names it and carries its digest
    meta = ModelMeta("owt", imagenet_categories(), TORCHVISION_IMAGENET, source="alexnet-test.pth", source_sha256=digest)
    bundle = WeightBundle(good_tensors, meta)
    assert check_hash(bundle, "converted.safetensors", [_entry(sha256_prefix=digest[:8])]).status == "PASS"
    assert "full sha256" in check_hash(bundle, "converted.safetensors", [_entry(sha256=digest)]).detail
    assert check_hash(bundle, "converted.safetensors", [_entry()]).status == "SKIP"  # like bvlc before a download
    assert check_hash(bundle, "converted.safetensors", []).status == "SKIP"  # not a registry file
    plain = WeightBundle(good_tensors, ModelMeta("owt", imagenet_categories(), TORCHVISION_IMAGENET, source_sha256=digest))
    assert check_hash(plain, tmp_path / "alexnet-test.pth", [_entry(sha256=digest)]).status == "PASS"  # by file name
    converted = _write(tmp_path, "converted.safetensors", good_tensors, source="alexnet-test.pth", source_sha256=digest)
    wrong = run_verify(converted, QUICK, entries=[_entry(sha256="0" * 64)])
    assert wrong.failed == ("hash",)
    assert "does not match full sha256" in next(c.detail for c in wrong.checks if c.name == "hash")


def test_render_table_is_aligned(files):
    report = run_verify(files["zero"], QUICK)
    lines = render_table(report).splitlines()
    column = lines[0].index("STATUS")
    for line, check in zip(lines[1:], report.checks):
        if line.startswith(check.name):
            assert line[column:column + 4] in ("PASS", "FAIL", "WARN", "SKIP"), line
    assert lines[-1].endswith("SKIP") and "FAILED (degenerate)" in lines[-1]
    doc = json.loads(render_json(report))
    assert doc["passed"] is False


def test_cli_json_shape_and_exit_status(files):
    good = run_cli("verify", str(files["good"]), "--no-framework-parity", "--json")
    assert good.returncode == 0, good.stderr
    doc = json.loads(good.stdout)
    assert set(doc) == {"weights", "passed", "checks"} and doc["passed"] is True
    assert all({"name", "status", "detail"} <= set(check) for check in doc["checks"])
    assert [c["name"] for c in doc["checks"]][:5] == ["metadata", "structure", "finite", "degenerate", "scale"]
    bad = run_cli("verify", str(files["nan"]), "--no-framework-parity", "--against", str(files["good"]))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "FAILED (finite, against)" in bad.stdout
    missing = run_cli("verify", str(files["good"]), "--images", str(files["good"].parent / "nowhere"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "--images expects a folder" in missing.stderr
