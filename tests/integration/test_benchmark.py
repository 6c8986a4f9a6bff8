"""`alexnet benchmark --json` keeps its documented shape (tiny settings; marked slow)."""

from __future__ import annotations

import json

import pytest

from alexnet_lab.core.hardware import cpu_has_native_bf16
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
# what --precision auto resolves to on this machine's CPU
AUTO = "bf16" if cpu_has_native_bf16() else "fp32"


def test_benchmark_json_shape():
    result = run_cli("benchmark", "--frameworks", "torch", "keras", "--batch-size", "2", "--size", "224", "--steps", "1",
                     "--repeats", "2", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    for framework in ("torch", "keras"):
        for key in ("train_img_s", "infer_img_s", "latency_ms", "peak_rss_mb", "reference_train_img_s",
                    "reference_infer_img_s", "train_speedup", "infer_speedup"):
            assert doc[framework][key] > 0, (framework, key)
        assert len(doc[framework]["details"]["rounds"]) == 2
        spread = doc[framework]["spread"]  # [min, max] over the rounds around each median
        for key in ("train_img_s", "infer_img_s", "train_speedup", "reference_train_img_s"):
            assert spread[key][0] <= spread[key][1], (framework, key)
        assert spread["train_img_s"][0] <= doc[framework]["train_img_s"] <= spread["train_img_s"][1]
        ours, reference = doc[framework]["ours"], doc[framework]["reference"]
        assert ours["train_precision"] == AUTO and ours["infer_precision"] == "fp32"  # train's and predict's defaults
        assert reference["train_precision"] == "fp32" and reference["infer_precision"] == "fp32"
        assert ("bf16_infer_img_s" in doc[framework]) is (AUTO == "bf16"), framework
    for framework in ("torch", "keras"):  # int8 on the CPU here: PyTorch's kernels, TensorFlow Lite for Keras
        assert doc[framework]["int8_infer_img_s"] > 0 and doc[framework]["int8_infer_speedup"] > 0, framework
    assert doc["keras"]["details"]["int8_engine"] == "tflite-xnnpack"
    assert doc["input_pipeline"]["jpeg_pipeline_img_s"] > 0
    assert {"cpu", "cores", "native_bf16"} <= set(doc["machine"]) and doc["settings"]["batch"] == 2
    assert doc["machine"]["float32_matmul_gflops"] > 0 and doc["machine"]["bfloat16_matmul_gflops"] > 0
    roofline = doc["roofline"]
    assert roofline["forward_gflop_per_image"] == pytest.approx(1.428, abs=1e-3)  # owt at 224: 714 M MACs
    assert set(roofline["peak_gflops"]) == {"fp32", "bf16"} and set(roofline["ceilings"]) == {"fp32", "bf16"}
    for framework in ("torch", "keras"):
        assert 0 < roofline[framework]["train_utilisation"] and roofline[framework]["max_train_speedup_fp32"] > 0
        assert roofline[framework]["max_train_speedup_bf16"] > 0
        assert roofline[framework]["ours"]["train_precision"] == AUTO
    assert doc["machine"]["cpu_kind"] in ("cpu-fp32", "cpu-avx512-bf16", "cpu-amx")


@pytest.mark.parametrize("args", [["--frameworks", "tensorflow"], ["--repeats", "0"], ["--steps", "0"],
                                  ["--batch-size", "0"], ["--size", "32"]])
def test_bad_arguments_are_one_line(args):
    result = run_cli("benchmark", *args)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
