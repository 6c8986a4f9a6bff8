"""EvalResult / EvalAccumulator against brute-force loops and hand-computed values."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.evaluate import EvalAccumulator, EvalResult, evaluate_logits, read_eval_json, write_eval_json
from tests.conftest import REPO


def brute_force(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Plain-Python reference: rank classes by (-logit, index), so ties go to the lower index."""
    k = min(5, num_classes)
    confusion = [[0] * num_classes for _ in range(num_classes)]
    top1 = topk = 0
    for row, label in zip(logits.tolist(), labels.tolist()):
        ranking = sorted(range(num_classes), key=lambda j: (-row[j], j))
        confusion[label][ranking[0]] += 1
        top1 += ranking[0] == label
        topk += label in ranking[:k]
    per_class = []
    for c in range(num_classes):
        total = sum(confusion[c])
        per_class.append(confusion[c][c] / total if total else None)
    n = len(labels)
    return {"top1": top1 / n, "topk": topk / n, "confusion": confusion, "per_class": per_class}


@pytest.mark.parametrize("num_classes", [2, 3, 7, 12])
def test_matches_brute_force(num_classes: int) -> None:
    rng = np.random.default_rng(num_classes)
    n = 300
    # Rounded logits so ties actually happen and the tie rule is exercised.
    logits = np.round(rng.normal(size=(n, num_classes)) * 2) / 2
    labels = rng.integers(0, num_classes, size=n)
    names = [f"class{i}" for i in range(num_classes)]
    result = evaluate_logits(logits, labels, names)
    expected = brute_force(logits, labels, num_classes)
    assert result.top1 == pytest.approx(expected["top1"])
    assert result.top5 == pytest.approx(expected["topk"])
    assert [list(row) for row in result.confusion] == expected["confusion"]
    assert list(result.per_class.values()) == pytest.approx(expected["per_class"])
    assert result.num_images == n
    assert result.top5_k == min(5, num_classes)
    if num_classes <= 5:
        assert result.top5 == 1.0


def test_loss_hand_computed() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [2.0, 0.0, -1.0]])
    labels = np.array([2, 0, 1])
    # -log softmax by hand: log(sum exp) - logit[label]
    expected = (
        math.log(math.e + math.e**2 + math.e**3) - 3.0
        + math.log(3.0)
        + math.log(math.e**2 + 1.0 + math.e**-1) - 0.0
    ) / 3
    result = evaluate_logits(logits, labels, ["a", "b", "c"])
    assert result.loss == pytest.approx(expected, rel=1e-12)
    assert result.loss == pytest.approx(1.2253548, abs=1e-6)
    assert result.top1 == pytest.approx(2 / 3)  # row 2 ties: argmax 0 == label 0


def test_loss_is_stable_at_large_logit_scale() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [5000.0, 5001.0, 4990.0]], dtype=np.float32)
    result = evaluate_logits(logits, np.array([1, 1]), ["a", "b", "c"])
    shifted = evaluate_logits(np.array([[1000.0, 0, -1000], [10, 11, 0]]), np.array([1, 1]), ["a", "b", "c"])
    assert math.isfinite(result.loss)
    assert result.loss == pytest.approx(shifted.loss)
    assert result.loss == pytest.approx((1000.0 + math.log1p(math.exp(-1) + math.exp(-11))) / 2)


def test_streaming_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(257, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=257)
    names = [str(i) for i in range(10)]
    accumulator = EvalAccumulator(names)
    for start in range(0, 257, 32):
        accumulator.update(logits[start : start + 32], labels[start : start + 32])
    accumulator.update(np.zeros((0, 10)), np.zeros((0,), dtype=int))  # an empty batch is harmless
    streamed, whole = accumulator.result(), evaluate_logits(logits, labels, names, batch_size=1000)
    assert streamed.confusion == whole.confusion
    assert streamed.top5 == whole.top5 and streamed.top1 == whole.top1
    assert streamed.loss == pytest.approx(whole.loss, rel=1e-12)


def test_class_without_images_is_none_and_json_null(tmp_path) -> None:
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [3.0, 0.0, 0.0]])
    result = evaluate_logits(logits, np.array([0, 1, 1]), ["cat", "dog", "owl"])
    assert result.per_class == {"cat": 1.0, "dog": 0.5, "owl": None}
    assert result.support == {"cat": 1, "dog": 2, "owl": 0}
    path = write_eval_json(result, tmp_path / "eval.json")

    def no_nan(token: str) -> None:
        raise AssertionError(f"non-JSON constant {token}")

    data = json.loads(path.read_text(), parse_constant=no_nan)
    assert data["per_class"]["owl"] is None
    assert {"top1", "top5", "loss", "num_images", "per_class", "confusion", "class_names"} <= set(data)
    assert data["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert read_eval_json(path) == result
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temp file left


def test_one_hot_and_float_labels() -> None:
    logits = np.array([[2.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    by_index = evaluate_logits(logits, np.array([0, 1, 1]), ["a", "b"])
    assert evaluate_logits(logits, np.eye(2)[[0, 1, 1]], ["a", "b"]) == by_index
    assert evaluate_logits(logits, np.array([0.0, 1.0, 1.0]), ["a", "b"]) == by_index


@pytest.mark.parametrize(
    ("logits", "labels", "names", "match"),
    [
        (np.zeros((2, 3)), np.array([0, 3]), ["a", "b", "c"], "labels in"),
        (np.zeros((2, 3)), np.array([0.5, 1]), ["a", "b", "c"], "integer labels"),
        (np.zeros((2, 4)), np.array([0, 1]), ["a", "b", "c"], "shape"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ["a", "b", "c"], "labels of shape"),
        (np.array([[np.nan, 0, 0]]), np.array([0]), ["a", "b", "c"], "diverged"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), ["a", "b", "c"], "no images"),
        (np.zeros((1, 2)), np.array([0]), ["a", "a"], "unique class names"),
    ],
)
def test_bad_input_raises_user_error(logits, labels, names, match) -> None:
    with pytest.raises(UserInputError, match=match) as info:
        evaluate_logits(logits, labels, names)
    assert "\n" not in str(info.value)


def test_read_eval_json_errors(tmp_path) -> None:
    with pytest.raises(UserInputError, match="no evaluation file"):
        read_eval_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserInputError, match="cannot read"):
        read_eval_json(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({"top1": 0.5}))
    with pytest.raises(UserInputError, match="lacks top5"):
        read_eval_json(tmp_path / "short.json")
    data = {"top1": 1, "top5": 1, "loss": 0, "num_images": 1, "per_class": {"a": 1, "b": None}, "confusion": [[1]]}
    with pytest.raises(UserInputError, match="not 2x2"):
        EvalResult.from_json_dict(data)


def test_import_loads_numpy_and_stdlib_only() -> None:
    code = (
        "import sys, alexnet_lab.evaluate\n"
        "heavy = {'matplotlib', 'PIL', 'torch', 'keras', 'tensorflow'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "[]"
