"""core.softmax is the one softmax: its maths, the old names' warnings, and no second copy in src/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core.softmax import logsumexp, softmax

SRC = Path(__file__).resolve().parents[2] / "src" / "alexnet_lab"
# files that still compute exp of logits themselves, to be moved onto core.softmax by their owner
NOT_YET: set[str] = set()


def test_rows_sum_to_one_at_any_scale():
    logits = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]], np.float32)
    probabilities = softmax(logits)
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[0, 0] == 1.0 and np.isfinite(probabilities).all()
    np.testing.assert_allclose(logsumexp(logits.astype(np.float64))[1], np.log(np.exp([1.0, 2.0, 3.0]).sum()))


def test_log_of_softmax_is_logits_minus_logsumexp():
    logits = np.random.default_rng(0).normal(size=(4, 7))
    np.testing.assert_allclose(np.log(softmax(logits)), logits - logsumexp(logits)[:, None], atol=1e-12)


@pytest.mark.parametrize("module", ["alexnet_lab.inference", "alexnet_lab.inference.predict"])
def test_the_old_names_still_work_with_a_warning(module):
    import importlib

    with pytest.warns(DeprecationWarning, match="core.softmax"):
        old = importlib.import_module(module).softmax
    assert old is softmax


def test_no_second_softmax_in_the_package():
    copies = [path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py")
              if "np.exp(" in path.read_text() and path.relative_to(SRC).as_posix() not in {"core/softmax.py", *NOT_YET}]
    assert not copies, f"exp of logits outside core/softmax.py (call core.softmax instead): {copies}"


def test_averaged_views_are_the_mean_of_the_one_softmax():
    from alexnet_lab.evaluate.dataset_eval import average_views

    views = [np.random.default_rng(seed).normal(size=(3, 5)) * 20 for seed in range(4)]
    np.testing.assert_allclose(np.exp(average_views(views)), np.mean([softmax(v) for v in views], axis=0), rtol=1e-5)
