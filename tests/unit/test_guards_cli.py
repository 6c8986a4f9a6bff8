"""The issue #27 guards end to end through the real CLI: a 1x3000 PNG, and weight files with a
zero std, a NaN scale, duplicate class names or a mean of length 2. Each is refused with a
non-zero exit and one line naming the problem, no traceback; `predict --json` still prints one
valid JSON document with the other images' predictions; `verify` reports a FAILed 'metadata'."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.unit.test_metadata_validator import SPEC, good_file, rewrite_metadata  # noqa: F401 - the fixture

CLASSES = ["c0", "c1", "c2", "c3"]
BAD = {
    "zero-std": ({**SPEC.to_dict(), "std": [0.2, 0.0, 0.2]}, CLASSES, "'std'"),
    "nan-scale": ({**SPEC.to_dict(), "scale": float("nan")}, CLASSES, "'scale'"),
    "duplicates": (SPEC.to_dict(), ["c0", "c1", "c0", "c3"], "names 'c0' twice"),
    "short-mean": ({**SPEC.to_dict(), "mean": [0.5, 0.5]}, CLASSES, "'mean'"),
}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / "good.png")
    Image.fromarray(np.full((1, 3000, 3), 120, np.uint8)).save(folder / "strip.png")
    return folder


def _one_line_error(result, *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]


def test_predict_json_survives_a_strip_among_good_images(good_file, pictures):  # noqa: F811
    good, strip = str(pictures / "good.png"), str(pictures / "strip.png")
    result = run_cli("predict", good, strip, "--weights", str(good_file), "--json", "--top", "2")
    _one_line_error(result, "strip.png", "3000x1", "aspect ratio")
    doc = json.loads(result.stdout)
    assert [entry["image"] for entry in doc] == [good, strip]
    assert len(doc[0]["predictions"]) == 2 and "aspect ratio" in doc[1]["error"]
    assert all(0.0 <= p["probability"] <= 1.0 for p in doc[0]["predictions"])


def test_explain_and_evaluate_go_on_past_a_strip(good_file, pictures, tmp_path):  # noqa: F811
    good, strip = str(pictures / "good.png"), str(pictures / "strip.png")
    result = run_cli("explain", good, strip, "--weights", str(good_file), "--out", str(tmp_path / "maps"))
    _one_line_error(result, "strip.png", "aspect ratio")
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [good]
    data = tmp_path / "data"
    for name, picture in (("c0", "good.png"), ("c1", "strip.png"), ("c2", "good.png"), ("c3", "good.png")):
        (data / name).mkdir(parents=True)
        (data / name / picture).write_bytes((pictures / picture).read_bytes())
    result = run_cli("evaluate", str(good_file), "--data", str(data), "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["num_images"] == 3 and "strip.png" in result.stderr


@pytest.mark.parametrize("case", sorted(BAD))
def test_predict_refuses_insane_metadata_in_one_line(good_file, pictures, tmp_path, case):  # noqa: F811
    spec, categories, words = BAD[case]
    weights = rewrite_metadata(good_file, tmp_path / f"{case}.safetensors", spec, categories)
    result = run_cli("predict", str(pictures / "good.png"), "--weights", str(weights), "--json")
    _one_line_error(result, words, "metadata")
    assert "NaN" not in result.stdout


def test_verify_reports_a_metadata_problem_as_one(good_file, tmp_path):  # noqa: F811
    spec, categories, _ = BAD["zero-std"]
    weights = rewrite_metadata(good_file, tmp_path / "zero-std.safetensors", spec, categories)
    result = run_cli("verify", str(weights), "--json", "--no-framework-parity")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["metadata"]["status"] == "FAIL" and "'std'" in checks["metadata"]["detail"]
    assert checks["structure"]["status"] == "SKIP"
