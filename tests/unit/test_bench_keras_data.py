"""`alexnet benchmark --data FOLDER --framework keras`: each side measured in-process on a few
photos (TensorFlow backend), and --data refusing two frameworks at once in one line."""

from __future__ import annotations

import pytest

from alexnet_lab.bench.settings import BenchSettings
from tests.conftest import run_cli
from tests.unit.test_bench_data import KEYS, photos  # noqa: F401 - the fixture

pytest.importorskip("tensorflow")


@pytest.mark.parametrize("impl", ["ours", "reference"])
def test_one_keras_side_reports_its_figures(photos, impl):  # noqa: F811
    from alexnet_lab.bench.keras_data_bench import measure_data

    settings = BenchSettings(size=64, batch=4, train_steps=1, view_samples=4)
    result = measure_data(impl, settings, str(photos))
    assert all(result[key] > 0 for key in KEYS)
    assert result["fed"] == pytest.approx(result["loader_img_s"] / result["step_img_s"])
    assert result["images"] == 8 and result["train_precision"] in ("fp32", "bf16")


def test_data_takes_one_framework(tmp_path):
    result = run_cli("benchmark", "--data", str(tmp_path), "--frameworks", "torch", "keras", timeout=120)
    assert result.returncode != 0 and "one framework at a time" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
