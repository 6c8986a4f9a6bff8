"""`alexnet convert --to onnx|torchscript|torch-export|savedmodel`: each export, reloaded without
this package, gives our own model's logits on real preprocessed images; exports are write-only.

The exported files are run in fresh processes with `alexnet_lab` made unimportable, so they are
proven standalone; TensorFlow only ever runs in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core.fileio import sha256_file
from alexnet_lab.core.preprocessing import PreprocessSpec, preprocess
from alexnet_lab.data.images import read_image_rgb
from alexnet_lab.weights.files import load_weights
from tests.conftest import REPO, run_cli

TINY = ["--data", "synthetic", "--variant", "cifar", "--synthetic-per-class", "20", "--epochs", "1",
        "--batch-size", "32"]
ALL_FORMATS = ("safetensors", "torch", "keras", "caffe-npy", "onnx", "torchscript", "torch-export", "savedmodel", "hf")
BLOCK_PACKAGE = "import sys; sys.modules['alexnet_lab'] = None  # any import of our package now fails\n"


def _train(tmp_path_factory, framework: str) -> Path:
    run = tmp_path_factory.mktemp(f"{framework}-run") / "run"
    result = run_cli("train", *TINY, "--framework", framework, "--out", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "torch")


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "keras")


def _convert(*args: str) -> str:
    result = run_cli("convert", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _python(script: str, *args: str, env: dict | None = None) -> dict:
    """Run a script in a fresh interpreter; it prints one JSON object on its last line."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=full_env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _images_as_exported(image_paths, metadata: dict) -> np.ndarray:
    """The images preprocessed as a deployer would: from the export's own metadata, in its layout."""
    spec = PreprocessSpec.from_dict(json.loads(metadata["preprocess"]))
    batch = np.stack([preprocess(read_image_rgb(p), spec) for p in image_paths])
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if metadata["input_layout"] == "NCHW" else batch)


def _onnx_metadata(path: Path) -> dict:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _run_onnx(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"] and [o.name for o in session.get_outputs()] == ["logits"]
    return session.run(["logits"], {"input": batch})[0]


def _torch_logits(weights: Path, batch_nchw: np.ndarray) -> np.ndarray:
    import torch

    from alexnet_lab.inference.predict import build_for

    model = build_for(load_weights(weights), "torch", device="cpu").eval()
    with torch.no_grad():
        return model(torch.from_numpy(batch_nchw)).numpy()


def _assert_close(exported: np.ndarray, ours: np.ndarray, atol: float) -> None:
    """Within `atol`, and relative to the logits' own spread too (a 1-epoch model's logits are small)."""
    diff, scale = float(np.abs(exported - ours).max()), float(np.abs(ours).max())
    assert diff <= atol and diff <= 1e-3 * scale, (diff, scale)
    assert (exported.argmax(1) == ours.argmax(1)).all()


def _check_metadata(metadata: dict, run: Path, framework: str) -> None:
    bundle = load_weights(run)
    assert metadata["format"] == "alexnet-lab/export" and metadata["framework"] == framework
    assert metadata["variant"] == "cifar" and json.loads(metadata["categories"]) == list(bundle.meta.categories)
    assert PreprocessSpec.from_dict(json.loads(metadata["preprocess"])) == bundle.meta.preprocess
    assert metadata["input_layout"] == {"torch": "NCHW", "keras": "NHWC"}[framework]
    assert metadata["weights_sha256"] == sha256_file(run / "best.safetensors")


def test_onnx_of_torch_run_matches_torch_model(torch_run, image_paths, tmp_path):
    out = tmp_path / "model.onnx"
    assert "NCHW float32 input [batch, 3, 32, 32]" in _convert(str(torch_run), str(out), "--to", "onnx")
    metadata = _onnx_metadata(out)
    _check_metadata(metadata, torch_run, "torch")
    batch = _images_as_exported(image_paths, metadata)
    ours, exported = _torch_logits(torch_run, batch), _run_onnx(out, batch)
    print(f"\nONNX (torch run) vs PyTorch model: max |logit diff| {np.abs(exported - ours).max():.2e} "
          f"(logit scale {np.abs(ours).max():.3f})")
    _assert_close(exported, ours, 1e-4)
    _assert_close(_run_onnx(out, batch[:1]), ours[:1], 1e-4)


@pytest.mark.slow
def test_onnx_owt_224_dynamic_batch(torchvision_pth, tmp_path):
    out = tmp_path / "owt.onnx"  # the format follows from the name
    assert "[batch, 3, 224, 224]" in _convert(str(torchvision_pth), str(out))
    assert _onnx_metadata(out)["variant"] == "owt"
    x = np.random.default_rng(3).standard_normal((3, 3, 224, 224), dtype=np.float32)
    ours = _torch_logits(torchvision_pth, x)
    exported = {n: _run_onnx(out, x[:n]) for n in (1, 3)}
    print(f"\nONNX owt vs PyTorch model: max |logit diff| batch 1 {np.abs(exported[1] - ours[:1]).max():.2e}, "
          f"batch 3 {np.abs(exported[3] - ours).max():.2e} (logit scale {np.abs(ours).max():.2f})")
    for n, logits in exported.items():
        _assert_close(logits, ours[:n], 1e-4)


RELOAD_TORCH = BLOCK_PACKAGE + r"""
import json, numpy as np, torch
x = torch.from_numpy(np.load(sys.argv[3]))
ts_meta, ep_meta = {"alexnet_lab.json": ""}, {"alexnet_lab.json": ""}
scripted = torch.jit.load(sys.argv[1], _extra_files=ts_meta)
program = torch.export.load(sys.argv[2], extra_files=ep_meta).module()
with torch.no_grad():
    np.save(sys.argv[4], scripted(x).numpy()); np.save(sys.argv[5], program(x).numpy())
    one = [float((scripted(x[:1]) - scripted(x)[:1]).abs().max()), float((program(x[:1]) - program(x)[:1]).abs().max())]
print(json.dumps({"torchscript": json.loads(ts_meta["alexnet_lab.json"]),
                  "torch_export": json.loads(ep_meta["alexnet_lab.json"]), "batch1_vs_batch": one}))
"""


def test_torchscript_and_torch_export_reload_with_plain_torch(torch_run, image_paths, tmp_path):
    ts, ep = tmp_path / "model.torchscript.pt", tmp_path / "model.pt2"
    _convert(str(torch_run), str(ts))
    _convert(str(torch_run), str(ep), "--to", "torch-export")
    paths = [tmp_path / n for n in ("x.npy", "ts.npy", "ep.npy")]
    metadata = load_weights(torch_run).meta.to_metadata() | {"input_layout": "NCHW"}
    np.save(paths[0], _images_as_exported(image_paths, metadata))
    report = _python(RELOAD_TORCH, str(ts), str(ep), *map(str, paths))
    _check_metadata(report["torchscript"], torch_run, "torch")
    _check_metadata(report["torch_export"], torch_run, "torch")
    ours, (scripted, program) = _torch_logits(torch_run, np.load(paths[0])), [np.load(p) for p in paths[1:]]
    print(f"\nTorchScript / torch.export vs PyTorch model: max |logit diff| {np.abs(scripted - ours).max():.2e} / "
          f"{np.abs(program - ours).max():.2e}")
    _assert_close(scripted, ours, 1e-5)
    _assert_close(program, ours, 1e-5)
    assert max(report["batch1_vs_batch"]) <= 1e-5


KERAS_SIDE = BLOCK_PACKAGE + r"""
import json, numpy as np, tensorflow as tf
x = np.load(sys.argv[2])
loaded = tf.saved_model.load(sys.argv[1])  # standalone: our package cannot be imported here
serve = loaded.signatures["serving_default"]
saved = serve(input=tf.constant(x))["logits"].numpy()
batch1 = float(np.abs(serve(input=tf.constant(x[:1]))["logits"].numpy() - saved[:1]).max())
metadata = json.loads(open(sys.argv[1] + "/assets.extra/alexnet_lab.json").read())
del sys.modules["alexnet_lab"]  # now our Keras model (TensorFlow backend, as trained) for the reference
from alexnet_lab.inference.predict import build_for
from alexnet_lab.frameworks.keras import predict_logits
from alexnet_lab.weights.files import load_weights
import keras
ours = predict_logits(build_for(load_weights(sys.argv[3]), "keras", device="cpu"), x)
np.save(sys.argv[4], ours)
print(json.dumps({"backend": keras.backend.backend(), "metadata": metadata,
                  "savedmodel_diff": float(np.abs(saved - ours).max()), "batch1": batch1,
                  "torch_loaded": "torch" in sys.modules}))
"""


@pytest.mark.slow  # the default run keeps the PyTorch run's ONNX, TorchScript and torch.export
def test_keras_run_onnx_and_savedmodel_match_keras_model(keras_run, image_paths, tmp_path):
    onnx_path, saved = tmp_path / "keras.onnx", tmp_path / "saved"
    assert "NHWC float32 input [batch, 32, 32, 3]" in _convert(str(keras_run), str(onnx_path), "--framework", "keras")
    _convert(str(keras_run), str(saved), "--to", "savedmodel")
    assert (saved / "saved_model.pb").is_file() and not list(tmp_path.glob(".*.tmp"))
    metadata = _onnx_metadata(onnx_path)
    _check_metadata(metadata, keras_run, "keras")
    x = _images_as_exported(image_paths, metadata)
    np.save(tmp_path / "x.npy", x)
    report = _python(KERAS_SIDE, str(saved), str(tmp_path / "x.npy"), str(keras_run), str(tmp_path / "ours.npy"),
                     env={"KERAS_BACKEND": "tensorflow"})
    assert report["backend"] == "tensorflow" and not report["torch_loaded"]
    _check_metadata(report["metadata"], keras_run, "keras")
    ours, exported = np.load(tmp_path / "ours.npy"), _run_onnx(onnx_path, x)
    print(f"\nKeras run: ONNX vs Keras model max |logit diff| {np.abs(exported - ours).max():.2e}; SavedModel vs "
          f"Keras model {report['savedmodel_diff']:.2e} (logit scale {np.abs(ours).max():.3f})")
    _assert_close(exported, ours, 1e-4)
    _assert_close(_run_onnx(onnx_path, x[:1]), ours[:1], 1e-4)
    assert report["savedmodel_diff"] <= min(1e-4, 1e-3 * np.abs(ours).max()) and report["batch1"] <= 1e-5


def _cli(capsys, *args: str) -> tuple[int, str]:
    from alexnet_lab.cli import main

    status = main(list(args))
    err = capsys.readouterr().err
    return status, err


@pytest.mark.parametrize("name", ["model.onnx", "model.pt2", "model.torchscript.pt", "saved"])
def test_exports_are_refused_as_input(capsys, tmp_path, name):
    source = tmp_path / name
    if name == "saved":
        source.mkdir()
        (source / "saved_model.pb").write_bytes(b"")
    else:
        source.write_bytes(b"")
    for args in (["convert", str(source), str(tmp_path / "out.safetensors")], ["info", str(source)]):
        status, err = _cli(capsys, *args)
        assert status == 2 and "write-only" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, expected",
    [
        (["OUT", "--to", "tflite"], f"expected one of: {', '.join(sorted(ALL_FORMATS))}."),
        (["OUT", "--to", "onnxx"], "Did you mean 'onnx'"),
        (["out.tflite"], f"add --to ({', '.join(ALL_FORMATS)})"),
        (["out.pt2", "--framework", "keras"], "--to torch-export exports the torch model"),
        (["SAVED", "--to", "savedmodel", "--framework", "torch"], "--to savedmodel exports the keras model"),
        (["out.safetensors", "--framework", "torch"], "Drop --framework"),
        (["HERE", "--to", "savedmodel"], "is not a SavedModel folder"),
    ],
)
def test_convert_export_argument_errors(capsys, tmp_path, args, expected):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "keep.txt").write_text("not to be replaced")
    names = {"OUT": str(tmp_path / "out"), "SAVED": str(tmp_path / "saved"), "HERE": str(tmp_path / "here")}
    args = [names.get(a, str(tmp_path / a) if a.startswith("out.") else a) for a in args]
    status, err = _cli(capsys, "convert", "missing-weights.safetensors", *args)  # checked before any loading
    assert status == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "here" / "keep.txt").is_file()
