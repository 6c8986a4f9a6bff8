"""Hostile and damaged weight files through the command line: one line on stderr, a non-zero exit,
no traceback — and a malicious pickle never runs (its payload would leave a marker file)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli


class _Payload:
    """Pickles as a call to os.system: what a malicious weight file would run on load."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {marker}"

    def __reduce__(self):
        return os.system, (self.command,)


def _assert_one_line_error(result, *expected: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("suffix", [".npy", ".pth"])
def test_malicious_pickles_are_refused_and_never_run(tmp_path, suffix):
    import torch

    marker = tmp_path / "marker"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".npy":
        np.save(path, {"conv1": [_Payload(marker), np.zeros(3, np.float32)]}, allow_pickle=True)
    else:
        torch.save({"features.0.weight": torch.zeros(3), "classifier.6.weight": _Payload(marker)}, path)
    _assert_one_line_error(run_cli("info", str(path)), "refuse")
    assert not marker.exists()


def test_the_payload_is_real(tmp_path):
    """Control: an unrestricted unpickler does run it."""
    import torch

    marker = tmp_path / "marker"
    torch.save({"x": _Payload(marker)}, tmp_path / "evil.pth")
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert marker.exists()


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    """Truncated, corrupt and unknown-layout files of every format (small: they fail on the way in)."""
    import h5py
    import torch

    folder = tmp_path_factory.mktemp("damaged")
    np.save(folder / "cut.npy", {"conv1": [np.ones((11, 11, 3, 96), np.float32), np.ones(96, np.float32)]}, allow_pickle=True)
    torch.save({"features.0.weight": torch.ones(64, 3, 11, 11)}, folder / "cut.pth")
    from safetensors.numpy import save_file

    from alexnet_lab.core.bundle import ModelMeta, generic_categories
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET

    meta = ModelMeta("owt", generic_categories(10), TORCHVISION_IMAGENET).to_metadata()  # as the project writes it
    save_file({"conv1.weight": np.ones((64, 3, 11, 11), np.float32)}, str(folder / "cut.safetensors"), metadata=meta)
    with h5py.File(folder / "cut.weights.h5", "w") as fh:
        fh.create_dataset("layers/conv1/vars/0", data=np.ones((11, 11, 3, 64), np.float32))
    files = {name: _truncate(folder / name) for name in ("cut.npy", "cut.pth", "cut.safetensors", "cut.weights.h5")}
    (folder / "noise.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"\x46\x00" + os.urandom(300))
    (folder / "noise.pth").write_bytes(b"PK\x03\x04" + os.urandom(300))
    layers = {"conv1": [np.ones((3, 3)), np.ones(3)], "fc9": [np.ones((2, 2)), np.ones(2)]}
    np.save(folder / "layout.npy", layers, allow_pickle=True)
    torch.save([torch.zeros(3)], folder / "layout.pth")
    with h5py.File(folder / "layout.weights.h5", "w") as fh:
        fh.create_dataset("layers/dense/vars/0", data=np.ones((4, 4), np.float32))
    files.update({name: folder / name for name in ("noise.npy", "noise.pth", "layout.npy", "layout.pth", "layout.weights.h5")})
    return files


@pytest.mark.parametrize("name, expected", [
    ("cut.npy", "truncated or corrupt"),
    ("noise.npy", "corrupt"),
    ("layout.npy", "unexpected layers ['fc9']"),
    ("cut.pth", "not a readable .pth file"),
    ("noise.pth", "not a readable .pth file"),
    ("layout.pth", "not a state dict"),
    ("cut.safetensors", "truncated or corrupt"),
    ("cut.weights.h5", "not a readable HDF5 file"),
    ("layout.weights.h5", "not an AlexNet weights file"),
])
def test_damaged_files_are_one_line_errors(damaged, name, expected):
    _assert_one_line_error(run_cli("info", str(damaged[name])), name, expected)


def test_unknown_format_and_wrong_cached_hash(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 16)
    _assert_one_line_error(run_cli("info", str(tmp_path / "weights.bin")), "cannot tell the format")
    cached = tmp_path / "alexnet-owt-7be5be79.pth"  # the torchvision file, replaced by other bytes
    cached.write_bytes(b"not the published file")
    env = {"ALEXNET_LAB_CACHE": str(tmp_path), "ALEXNET_LAB_OFFLINE": "1"}
    _assert_one_line_error(run_cli("info", "torchvision", env=env), "expected 7be5be79")
    assert not cached.exists()  # removed as corrupt, so the next run downloads afresh
