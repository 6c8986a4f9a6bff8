"""Caffe-TF .npy: layouts, the fc6 flatten permutation, round trips and the restricted unpickler.

The full-size files use the real bvlc_alexnet shapes (the layout check does not allow a smaller
fc width), built once per module; the protocol and malformed-file tests use small pickles.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core.errors import LayoutError, WeightFormatError
from alexnet_lab.core.spec import ORIGINAL
from alexnet_lab.weights.formats.caffe_npy import (
    caffe_layers,
    fc6_from_caffe,
    fc6_to_caffe,
    load_npy_object,
    read_caffe_npy,
    restricted_load,
    write_caffe_npy,
)

BVLC_SHAPES = {
    "conv1": (11, 11, 3, 96),
    "conv2": (5, 5, 48, 256),
    "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384),
    "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096),
    "fc7": (4096, 4096),
    "fc8": (4096, 1000),
}
OBJECT_HEADER = {"descr": "|O", "fortran_order": False, "shape": ()}


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol 2 as Python 2 numpy wrote it: str/bytes as BINSTRING, `numpy.core` module paths."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def _save_object_npy(path: Path, pickle_bytes: bytes) -> Path:
    """A .npy holding an object array whose pickle is exactly `pickle_bytes`."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, OBJECT_HEADER)
        fh.write(pickle_bytes)
    return path


def _py2_npy(path: Path, obj: object) -> Path:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(np.array(obj, dtype=object))  # np.save wraps dicts in a 0-d array
    return _save_object_npy(path, buf.getvalue())


def _boxed(obj: object) -> np.ndarray:
    """A 0-d object array holding `obj` as is (np.asarray would turn a list into a plain array)."""
    box = np.empty((), dtype=object)
    box[()] = obj
    return box


def _write_marker(path: str) -> None:
    """What a malicious pickle would run: leaves a file behind if it is ever called."""
    Path(path).write_text("pwned")


class _Evil:
    def __init__(self, func: object, arg: str) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.func, (self.arg,)


@pytest.fixture(scope="module")
def npy_layers() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        name: [rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape[-1], dtype=np.float32)]
        for name, shape in BVLC_SHAPES.items()
    }


@pytest.fixture(scope="module")
def real_file(npy_layers, tmp_path_factory) -> Path:
    """Written as the real bvlc_alexnet.npy was: Python 2 numpy, np.save, pickle protocol 2."""
    return _py2_npy(tmp_path_factory.mktemp("npy") / "bvlc_alexnet.npy", npy_layers)


@pytest.fixture(scope="module")
def canonical(real_file) -> dict[str, np.ndarray]:
    return read_caffe_npy(real_file)


def _same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


def test_real_layout_reads_to_canonical_shapes(canonical, npy_layers):
    assert {k: v.shape for k, v in canonical.items()} == ORIGINAL.canonical_shapes(1000)
    assert all(v.dtype == np.float32 and v.flags["C_CONTIGUOUS"] for v in canonical.values())
    for name, (_, bias) in npy_layers.items():
        np.testing.assert_array_equal(canonical[f"{name}.bias"], bias)
    for name in ("fc7", "fc8"):
        np.testing.assert_array_equal(canonical[f"{name}.weight"], npy_layers[name][0].T)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv5"])
def test_conv_weights_compute_the_same_filter_response(canonical, npy_layers, layer):
    kernel = npy_layers[layer][0]
    patch = np.random.default_rng(1).standard_normal(kernel.shape[:3])  # (kH, kW, in/groups), channels last
    tf_response = np.einsum("hwi,hwio->o", patch, kernel.astype(np.float64))
    torch_response = np.einsum("oihw,ihw->o", canonical[f"{layer}.weight"].astype(np.float64), patch.transpose(2, 0, 1))
    np.testing.assert_allclose(torch_response, tf_response, rtol=1e-12, atol=1e-12)


def test_fc6_permutation_matches_flattening_each_framework_way(canonical, npy_layers):
    feature_map = np.random.default_rng(2).standard_normal((6, 6, 256))  # pool5 output, H,W,C
    outputs = slice(0, 64)  # a subset of units keeps the float64 products cheap
    tf_out = feature_map.reshape(-1) @ npy_layers["fc6"][0][:, outputs].astype(np.float64)
    torch_in = feature_map.transpose(2, 0, 1).reshape(-1)  # what torch.flatten gives for NCHW
    torch_out = canonical["fc6.weight"][outputs].astype(np.float64) @ torch_in
    np.testing.assert_allclose(torch_out, tf_out, rtol=1e-10, atol=1e-10)
    assert not np.allclose(canonical["fc6.weight"][outputs], npy_layers["fc6"][0][:, outputs].T)


def test_fc6_helpers_invert_each_other_on_small_shapes():
    weight = np.arange(2 * 3 * 3 * 5, dtype=np.float32).reshape(2 * 3 * 3, 5)  # C=2, H=W=3, out=5
    canonical = fc6_from_caffe(weight, channels=2, size=3)
    h, w, c, o = 1, 2, 1, 4
    assert canonical[o, c * 9 + h * 3 + w] == weight[(h * 3 + w) * 2 + c, o]
    np.testing.assert_array_equal(fc6_to_caffe(canonical, channels=2, size=3), weight)


def test_write_then_read_is_bit_exact_and_classic_loader_compatible(canonical, npy_layers, tmp_path):
    out = tmp_path / "roundtrip"  # no suffix: the writer must not let np.save append '.npy'
    assert write_caffe_npy(canonical, out) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roundtrip"]
    assert _same_bits(read_caffe_npy(out), canonical)
    classic = np.load(out, allow_pickle=True, encoding="latin1").item()  # how TF1 code read the file
    assert list(classic) == list(BVLC_SHAPES)
    for name, (weights, bias) in npy_layers.items():
        assert classic[name][0].tobytes() == weights.tobytes() and classic[name][1].tobytes() == bias.tobytes()


def test_dict_of_dicts_with_bytes_keys(tmp_path):
    # only the container differs from the real layout and the conversion after it is shared, so
    # small arrays (which the layout check would refuse) are enough here and keep the test fast
    rng = np.random.default_rng(3)
    small = {name: [rng.standard_normal(shape[:-2] + (2, 3), dtype=np.float32), rng.standard_normal(3, dtype=np.float32)]
             for name, shape in BVLC_SHAPES.items()}
    nested = {name.encode(): {b"weights": w, "biases": b} for name, (w, b) in small.items()}
    np.save(tmp_path / "nested.npy", nested, allow_pickle=True)
    layers = caffe_layers(load_npy_object(tmp_path / "nested.npy"))
    assert list(layers) == list(BVLC_SHAPES)
    for name, (weights, bias) in small.items():
        assert layers[name][0].tobytes() == weights.tobytes() and layers[name][1].tobytes() == bias.tobytes()


def test_fixture_is_a_python2_protocol2_pickle(real_file):
    with open(real_file, "rb") as fh:
        head = fh.read(400)
    assert head[128:130] == b"\x80\x02"  # PROTO 2, right after the 128-byte .npy header
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in head and b"U\x05conv1" in head  # GLOBAL, py2 str key


def test_numpy_py3_save_of_the_real_layout(tmp_path):
    small = {"conv1": [np.ones((2, 2, 3, 4), np.float32), np.zeros(4, np.float32)], "fc8": [np.eye(3), np.ones(3)]}
    np.save(tmp_path / "py3.npy", small, allow_pickle=True)  # protocol 3 or 4, depending on numpy
    layers = caffe_layers(load_npy_object(tmp_path / "py3.npy"))
    assert list(layers) == ["conv1", "fc8"]
    np.testing.assert_array_equal(layers["fc8"][0], np.eye(3))


def test_truncated_real_file_is_refused(real_file, tmp_path):
    cut = tmp_path / "cut.npy"
    with open(real_file, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(os.path.getsize(real_file) // 2))
    with pytest.raises(WeightFormatError, match="truncated or corrupt"):
        read_caffe_npy(cut)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_restricted_load_handles_every_protocol(protocol):
    data = {
        "conv1": [np.arange(12, dtype=np.float32).reshape(2, 6), np.float32(1.5)],
        b"fc8": {b"weights": np.asfortranarray(np.ones((3, 2))), "biases": np.zeros(0, dtype=np.int64)},
        "object": np.array({"nested": (1, 2.5, None, True)}, dtype=object),
    }
    out = restricted_load(io.BytesIO(pickle.dumps(data, protocol=protocol)), "test")
    np.testing.assert_array_equal(out["conv1"][0], data["conv1"][0])
    assert out["conv1"][1] == np.float32(1.5) and out[b"fc8"]["biases"].shape == (0,)
    np.testing.assert_array_equal(out[b"fc8"][b"weights"], np.ones((3, 2)))
    assert out["object"].item() == {"nested": (1, 2.5, None, True)}


@pytest.mark.parametrize("small_layout", [
    {"conv1": [np.zeros((1, 1, 1, 2)), np.zeros(2)]},
    {"conv1": (np.zeros((1, 1, 1, 2)), np.zeros(2))},
    {b"conv1": {"weights": np.zeros((1, 1, 1, 2)), b"biases": np.zeros(2)}},
])
def test_caffe_layers_accepts_every_container_layout(small_layout):
    weights, biases = caffe_layers(small_layout)["conv1"]
    assert weights.shape == (1, 1, 1, 2) and biases.shape == (2,)


def _refused_payloads(marker: Path) -> dict[str, bytes]:
    return {
        "os.system via protocol 0": b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        "os.system via np.save-style reduce": pickle.dumps({"conv1": [_Evil(os.system, f"touch {marker}")]}, 2),
        "test function, protocol 4": pickle.dumps(np.array({"fc6": _Evil(_write_marker, str(marker))}), 4),
        "builtins.exec nested in a list": pickle.dumps([1, _Evil(exec, f"open({str(marker)!r}, 'w')")], 3),
    }


@pytest.mark.parametrize("kind", list(_refused_payloads(Path("x"))))
def test_malicious_pickle_is_refused_without_running(kind, tmp_path):
    marker = tmp_path / "marker"
    path = _save_object_npy(tmp_path / "evil.npy", _refused_payloads(marker)[kind])
    with pytest.raises(WeightFormatError, match=r"refuses to load .*it would import '[\w.]+\.\w+'"):
        read_caffe_npy(path)
    assert not marker.exists()


def test_malicious_payload_is_real(tmp_path):
    """Control: numpy's own pickle loading does run the payload the reader refuses."""
    marker = tmp_path / "marker"
    path = _save_object_npy(tmp_path / "evil.npy", _refused_payloads(marker)["test function, protocol 4"])
    np.load(path, allow_pickle=True)
    assert marker.exists()


def test_refusal_names_the_forbidden_global(tmp_path):
    path = _save_object_npy(tmp_path / "evil.npy", b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(WeightFormatError, match="it would import 'os.system'"):
        read_caffe_npy(path)


@pytest.mark.parametrize("keep", [0, 5, 9, 40, 80, 100, 150])
def test_truncated_small_files_are_refused(tmp_path, keep):
    full = io.BytesIO()
    np.save(full, {"conv1": [np.ones((2, 2, 2, 2), np.float32), np.ones(2, np.float32)]}, allow_pickle=True)
    path = tmp_path / "cut.npy"
    path.write_bytes(full.getvalue()[:keep])
    with pytest.raises(WeightFormatError):
        read_caffe_npy(path)


@pytest.mark.parametrize("content, message", [
    (np.zeros((2, 3), np.float32), "plain <f4 array of shape \\(2, 3\\), not a Caffe-TF weight dict"),
    (_boxed([np.zeros(3)]), "holds a list, not a dict of layers"),
    ({"conv1": 5}, "'conv1' is a int; expected \\[weights, biases\\]"),
    ({"conv1": [np.zeros(3)]}, "'conv1' is a list; expected"),
    ({"conv1": {"w": np.zeros(3), "b": np.zeros(1)}}, "expected exactly 'weights' and 'biases'"),
    ({"conv1": [np.zeros((3, 3)), np.zeros(3)]}, "'conv1' weights: expected a 4-D numeric array, received shape \\(3, 3\\)"),
    ({"fc9": [np.zeros((3, 3)), np.zeros(3)]}, "unexpected layers \\['fc9'\\]"),
])
def test_unknown_layouts_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content, allow_pickle=True)
    with pytest.raises(WeightFormatError, match=message) as info:
        read_caffe_npy(path)
    assert "\n" not in str(info.value)


def test_not_npy_and_missing_files(tmp_path):
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"PK\x03\x04 this is a zip, not a npy")
    with pytest.raises(WeightFormatError, match="is not a .npy file"):
        read_caffe_npy(junk)
    with pytest.raises(WeightFormatError, match="cannot read"):
        read_caffe_npy(tmp_path / "missing.npy")


def test_wrong_shapes_raise_layout_error_naming_the_file(tmp_path):
    layers = {name: [np.zeros(shape[:-1] + (3,), np.float32), np.zeros(3, np.float32)] for name, shape in BVLC_SHAPES.items()}
    path = tmp_path / "small.npy"
    np.save(path, layers, allow_pickle=True)
    with pytest.raises(LayoutError, match="small.npy"):
        read_caffe_npy(path)
