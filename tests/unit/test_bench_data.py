"""`alexnet benchmark --data FOLDER`: one side measured in-process on a few photos, the rounds
assembled into medians, spreads and ratios, and a bad folder refused in one line."""

from __future__ import annotations

import pytest

from alexnet_lab.bench.settings import BenchSettings
from tests.conftest import run_cli
from tests.unit.test_train_views import photo

KEYS = ("loader_img_s", "train_img_s", "step_img_s", "fed", "view_img_s_per_core")


@pytest.fixture
def photos(tmp_path):
    for i in range(8):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        photo(tmp_path / f"c{i % 2}" / f"{i}.jpg", 160, 120, i)
    return tmp_path


@pytest.mark.parametrize("impl", ["ours", "reference"])
def test_one_side_reports_its_figures(photos, impl):
    from alexnet_lab.bench.data_bench import measure_data

    settings = BenchSettings(size=64, batch=4, train_steps=1, view_samples=4, workers=1, threads=1)
    result = measure_data(impl, settings, str(photos))
    assert all(result[key] > 0 for key in KEYS)
    assert result["fed"] == pytest.approx(result["loader_img_s"] / result["step_img_s"])
    assert result["workers"] == 1 and result["images"] == 8


def test_rounds_give_medians_spreads_and_ratios(monkeypatch):
    from alexnet_lab.bench import runner

    speeds = iter([10.0, 8.0, 12.0, 8.0, 11.0, 10.0])  # ours, reference, per round

    def fake(args):
        value = next(speeds)
        return {key: value for key in KEYS} | {"workers": 1}

    monkeypatch.setattr(runner, "_worker", fake)
    doc = runner.run_data_benchmark(BenchSettings(repeats=3), "folder")
    assert doc["ours"]["train_img_s"] == 11.0 and doc["reference"]["train_img_s"] == 8.0
    assert doc["spread"]["train_img_s_ratio"] == [1.1, 1.5]
    assert doc["train_img_s_ratio"] == pytest.approx(1.25) and "load_average" in doc["machine"]


def test_a_missing_folder_is_one_line(tmp_path):
    result = run_cli("benchmark", "--data", str(tmp_path / "nothing"), timeout=120)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
