"""A corpus of hostile and damaged inputs, each run through the real `alexnet` CLI in a subprocess.

Each case builds its own input from a few good files and says what the CLI must do:
  * "error": a non-zero exit, exactly one line on stderr, no traceback;
  * "verify-fail": `alexnet verify` exits 1 with the named check FAILed (verify's table on stdout);
  * "partial": `predict` reports the bad images, one stderr line each, predicts the rest, exits non-zero.
`run_case` measures each run's peak resident memory with os.wait4 (the child's own rusage).
Used by tests/integration/test_bad_inputs.py and benchmarks/bad_inputs.py.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alexnet_lab.core.preprocessing import PreprocessSpec

REPO = Path(__file__).resolve().parents[2]
CIFAR_PREPROCESS = PreprocessSpec(resize=32, resize_mode="square", crop=32)  # as train.run's, without CIFAR statistics


@dataclass(frozen=True)
class Case:
    """One hostile input: the CLI arguments and what must happen."""

    name: str
    args: tuple[str, ...]
    expect: str = "error"  # error | verify-fail | partial
    words: str = ""  # text the stderr line must hold (error), or the check that must FAIL (verify-fail)
    env: dict[str, str] = field(default_factory=dict)


BUILDERS: dict[str, Callable[[Path, dict[str, Path]], Case]] = {}


def case(name: str):
    def register(builder):
        BUILDERS[name] = lambda folder, good: builder(name, folder, good)
        return builder
    return register


# ---------------------------------------------------------------- good files the cases start from

def _random_tensors(variant: str, num_classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch-default-like weights; BatchNorm statistics at their identity values."""
    from alexnet_lab.core.spec import get_arch

    rng = np.random.default_rng(seed)
    shapes = get_arch(variant).canonical_shapes(num_classes)
    tensors = {}
    for key, shape in shapes.items():
        if key.startswith("bn"):
            tensors[key] = np.full(shape, 1.0 if key.endswith(("weight", "running_var")) else 0.0, np.float32)
            continue
        fan_in = math.prod(shapes[key.replace(".bias", ".weight")][1:])
        values = rng.random(shape, dtype=np.float32)  # float32 directly: an owt file in a second
        values -= np.float32(0.5)
        values *= np.float32(2 / math.sqrt(fan_in))
        tensors[key] = values
    return tensors


def write_good_files(folder: Path) -> dict[str, Path]:
    """cifar (BatchNorm), owt and original .safetensors with full records, and two images."""
    from PIL import Image

    from alexnet_lab.weights import default_preprocess, save_weights

    folder.mkdir(parents=True, exist_ok=True)
    good = {
        "cifar": save_weights(_bundle("cifar", 10, CIFAR_PREPROCESS), folder / "cifar.safetensors"),
        "owt": save_weights(_bundle("owt", 1000, default_preprocess("owt")), folder / "owt.safetensors"),
    }
    rng = np.random.default_rng(7)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(folder / name)
        good[name] = folder / name
    return good


def _bundle(variant: str, num_classes: int, preprocess):
    from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories, imagenet_categories

    names = imagenet_categories() if num_classes == 1000 else generic_categories(num_classes)
    return WeightBundle(_random_tensors(variant, num_classes), ModelMeta(variant, names, preprocess))


# ---------------------------------------------------------------- helpers

def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _raw_safetensors(path: Path, header: dict, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def _meta() -> dict[str, str]:
    from alexnet_lab.core.bundle import ModelMeta, generic_categories
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET

    return ModelMeta("cifar", generic_categories(10), TORCHVISION_IMAGENET).to_metadata()


def _tensor_span(path: Path, name: str) -> tuple[int, int]:
    """Absolute byte range of a tensor in a .safetensors file."""
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8:8 + length])
    begin, end = header[name]["data_offsets"]
    return 8 + length + begin, 8 + length + end


def _edit_tensor(src: Path, dst: Path, name: str, edit: Callable[[np.ndarray], np.ndarray]) -> Path:
    """Copy `src`, rewriting one tensor's bytes in place (the header and its records unchanged)."""
    data = bytearray(src.read_bytes())
    begin, end = _tensor_span(src, name)
    array = np.frombuffer(bytes(data[begin:end]), dtype="<f4").copy()
    data[begin:end] = np.ascontiguousarray(edit(array), dtype="<f4").tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _deflate_bomb(path: Path, member: str, size: int, extra: dict[str, bytes] | None = None) -> Path:
    """A valid zip whose `member` inflates to `size` zero bytes (size < 4 GiB; ~size / 1000 on disk).

    Written by hand: after a full flush zlib's state is reset, so one compressed 16 MiB block of
    zeros can be repeated instead of compressing the whole size (seconds instead of a minute).
    """
    chunk = bytes(16 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = block * (size // len(chunk)) + compressor.flush()
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    members = [(name, zlib.crc32(raw), raw, len(raw), 0) for name, raw in (extra or {}).items()]
    members.append((member, crc, data, size, 8))
    with open(path, "wb") as fh:
        central = b""
        for name, crc_, raw, usize, method in members:
            offset = fh.tell()
            encoded = name.encode()
            fh.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 33, crc_, len(raw), usize,
                                 len(encoded), 0) + encoded + raw)
            central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 33, crc_, len(raw), usize,
                                   len(encoded), 0, 0, 0, 0, 0, offset) + encoded
        start = fh.tell()
        fh.write(central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                                       start, 0))
    return path


def _info(path: Path) -> tuple[str, ...]:
    return ("info", str(path))


# ---------------------------------------------------------------- safetensors

@case("empty.safetensors")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("truncated.safetensors")
def _(name, folder, good):
    data = good["cifar"].read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    return Case(name, _info(folder / name), words="truncated or corrupt")


@case("wrong-magic.safetensors")
def _(name, folder, good):
    (folder / name).write_bytes(good["a.png"].read_bytes())
    return Case(name, _info(folder / name), words="corrupt")


@case("huge-header-length.safetensors")
def _(name, folder, good):
    return Case(name, _info(_raw_safetensors(folder / name, {}, length=1 << 60)), words="header length")


@case("header-longer-than-file.safetensors")
def _(name, folder, good):
    return Case(name, _info(_raw_safetensors(folder / name, {}, length=90_000_000)), words="header length")


@case("deeply-nested-header.safetensors")
def _(name, folder, good):
    text = b"{\"a\":" + b"[" * 200_000 + b"]" * 200_000 + b"}"
    (folder / name).write_bytes(struct.pack("<Q", len(text)) + text)
    return Case(name, _info(folder / name), words="bad header")


@case("negative-shape.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "conv1.weight": {"dtype": "F32", "shape": [-4, 1], "data_offsets": [0, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="bad entry")


@case("overflowing-shape.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(),
              "conv1.weight": {"dtype": "F32", "shape": [1 << 62, 1 << 62, 4], "data_offsets": [0, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="does not fill")


@case("overlapping-offsets.safetensors")
def _(name, folder, good):
    """Every tensor entry pointing at the same bytes: 1000 entries would read 1000x the file."""
    entries = {f"t{i}": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]} for i in range(1000)}
    header = {"__metadata__": _meta(), **entries}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(4 << 20))), words="overlaps")


@case("gap-in-offsets.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="gap")


@case("offsets-past-the-end.safetensors")
def _(name, folder, good):
    header = {"__metadata__": _meta(), "a": {"dtype": "F32", "shape": [1 << 28], "data_offsets": [0, 1 << 30]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(16))), words="cover")


@case("duplicate-keys.safetensors")
def _(name, folder, good):
    text = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    (folder / name).write_bytes(struct.pack("<Q", len(text)) + text + bytes(4))
    return Case(name, _info(folder / name), words="duplicate key")


@case("no-metadata.safetensors")
def _(name, folder, good):
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    return Case(name, _info(_raw_safetensors(folder / name, header, bytes(4))), words="no alexnet-lab metadata")


@case("symlink-to-dev-zero.safetensors")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _info(folder / name), words="device")


@case("fifo.safetensors")
def _(name, folder, good):
    os.mkfifo(folder / name)
    return Case(name, _info(folder / name), words="FIFO")


@case("folder.safetensors")
def _(name, folder, good):
    (folder / name).mkdir()
    return Case(name, _info(folder / name), words="folder")


# ---------------------------------------------------------------- verify: files that load but lie

def _verify(path: Path) -> tuple[str, ...]:
    return ("verify", str(path), "--no-framework-parity")


@case("bit-flip.safetensors")
def _(name, folder, good):
    def flip(array):
        array.view(np.uint32)[len(array) // 2] ^= 1  # the lowest mantissa bit of one fc6 weight
        return array
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "fc6.weight", flip)), "verify-fail", "digest")


@case("bit-flip.pth")
def _(name, folder, good):
    """A project-written .pth (converted in a subprocess) with one bit of its largest tensor flipped."""
    written = folder / "written.pth"
    result = run_cli_measured(("convert", str(good["cifar"]), str(written)))
    assert result["returncode"] == 0, result["stderr"]
    with zipfile.ZipFile(written) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)  # stored, not deflated, by torch.save
    data = bytearray(written.read_bytes())
    name_len, extra_len = struct.unpack("<2H", data[largest.header_offset + 26:largest.header_offset + 30])
    data[largest.header_offset + 30 + name_len + extra_len + largest.file_size // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    return Case(name, _verify(folder / name), "verify-fail", "digest")


@case("fc6-permuted-hwc.safetensors")
def _(name, folder, good):
    def permute(array):  # fc6 columns re-ordered C,H,W -> H,W,C: the classic Keras porting mistake
        w = array.reshape(1024, 192, 4, 4)
        return w.transpose(0, 2, 3, 1).reshape(-1)
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "fc6.weight", permute)), "verify-fail",
                "digest")


@case("conv4-x1000.safetensors")
def _(name, folder, good):
    """Rewritten with fresh records: only the scale check can tell."""
    from alexnet_lab.weights import load_weights, save_weights

    bundle = load_weights(good["cifar"])
    tensors = dict(bundle.tensors, **{"conv4.weight": bundle.tensors["conv4.weight"] * np.float32(1000)})
    path = save_weights(type(bundle)(tensors, bundle.meta), folder / name)
    return Case(name, _verify(path), "verify-fail", "scale")


@case("contradictory-input-size.safetensors")
def _(name, folder, good):
    """Metadata saying 32x32 input but a 224 crop: the model would be fed the wrong size."""
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.weights import load_weights, save_weights

    bundle = load_weights(good["cifar"])
    path = save_weights(bundle.with_meta(preprocess=TORCHVISION_IMAGENET, input_size=32), folder / name)
    return Case(name, _predict(good["a.png"], weights=path), words="contradicts itself")


@case("nan-weights.safetensors")
def _(name, folder, good):
    def poison(array):
        array[3] = np.nan
        return array
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "conv2.weight", poison)), "verify-fail",
                "finite")


# ---------------------------------------------------------------- pickles (.npy, .pth)

class _Payload:
    """Pickles as a call to os.system: what a malicious weight file would run on load."""

    def __init__(self, marker: Path) -> None:
        self.command = f"touch {marker}"

    def __reduce__(self):
        return os.system, (self.command,)


@case("pickle-with-code.npy")
def _(name, folder, good):
    np.save(folder / name, {"conv1": [_Payload(folder / "npy-ran"), np.zeros(3, np.float32)]}, allow_pickle=True)
    return Case(name, _info(folder / name), words="refuses")


@case("pickle-with-code.pth")
def _(name, folder, good):
    import torch

    torch.save({"features.0.weight": torch.zeros(3), "classifier.6.weight": _Payload(folder / "pth-ran")}, folder / name)
    return Case(name, _info(folder / name), words="refused")


@case("plain-array.npy")
def _(name, folder, good):
    np.save(folder / name, np.zeros((4, 4), np.float32))
    return Case(name, _info(folder / name), words="plain")


@case("huge-header.npy")
def _(name, folder, good):
    (folder / name).write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{" * 64)
    return Case(name, _info(folder / name), words="corrupt")


@case("empty.npy")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("empty.pth")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("zip-bomb.pth")
def _(name, folder, good):
    return Case(name, _info(_deflate_bomb(folder / name, "archive/data/0", 1 << 30)), words="refused before decoding")


# ---------------------------------------------------------------- Keras (.keras, .weights.h5)

@case("zip-bomb.keras")
def _(name, folder, good):
    extra = {"config.json": b"{}", "metadata.json": b"{}"}
    return Case(name, _info(_deflate_bomb(folder / name, "model.weights.h5", (4 << 30) - (16 << 20), extra)),
                words="refused before decoding")


@case("metadata-bomb.keras")
def _(name, folder, good):
    return Case(name, _info(_deflate_bomb(folder / name, "alexnet_lab.json", 1 << 30)), words="refused before decoding")


@case("symlink-to-dev-zero.keras")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _info(folder / name), words="device")


@case("empty.keras")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


@case("fill-value-bomb.weights.h5")
def _(name, folder, good):
    """A dataset of 2^30 floats with no chunk written: a few KB that read as 4 GB of zeros."""
    import h5py

    with h5py.File(folder / name, "w") as fh:
        fh.create_dataset("layers/conv1/vars/0", shape=(1 << 30,), dtype="f4", chunks=(1 << 16,))
    return Case(name, _info(folder / name), words="refused before decoding")


@case("empty.weights.h5")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _info(folder / name), words="is empty")


# ---------------------------------------------------------------- convert: never destroy, never lose

@case("convert-onto-its-input")
def _(name, folder, good):
    path = _copy(good["cifar"], folder / "self.safetensors")
    return Case(name, ("convert", str(path), str(path), "--to", "torch", "--force"), words="contradicts")


@case("convert-onto-its-input-same-format")
def _(name, folder, good):
    path = _copy(good["cifar"], folder / "self2.safetensors")
    link = folder / "link.safetensors"
    link.symlink_to(path)
    return Case(name, ("convert", str(path), str(link), "--force"), words="is the input")


@case("convert-over-existing-file")
def _(name, folder, good):
    (folder / "existing.pth").write_bytes(b"someone's file")
    return Case(name, ("convert", str(good["cifar"]), str(folder / "existing.pth")), words="--force")


@case("convert-to-contradicting-suffix")
def _(name, folder, good):
    return Case(name, ("convert", str(good["cifar"]), str(folder / "out.safetensors"), "--to", "keras"),
                words="contradicts")


@case("convert-batchnorm-to-npy")
def _(name, folder, good):
    return Case(name, ("convert", str(good["cifar"]), str(folder / "cifar.npy")), words="BatchNorm")


@case("convert-owt-to-npy")
def _(name, folder, good):
    return Case(name, ("convert", str(good["owt"]), str(folder / "owt.npy")), words="variant record")


# ---------------------------------------------------------------- images

def _predict(*images: Path, weights: Path) -> tuple[str, ...]:
    return ("predict", *map(str, images), "--weights", str(weights), "--json")


@case("decompression-bomb.png")
def _(name, folder, good):
    from PIL import Image

    Image.new("1", (13000, 13000)).save(folder / name, optimize=True)
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="pixel budget")


@case("truncated.jpg")
def _(name, folder, good):
    from PIL import Image

    Image.open(good["a.png"]).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="truncated or corrupt")


@case("empty.jpg")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="cannot read image")


@case("text-named.png")
def _(name, folder, good):
    (folder / name).write_text("not an image")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not in an image format")


@case("folder.png")
def _(name, folder, good):
    (folder / name).mkdir()
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="folder")


@case("fifo.png")
def _(name, folder, good):
    os.mkfifo(folder / name)
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not a regular file")


@case("symlink-to-dev-zero.png")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not a regular file")


@case("batch-with-one-bad-image")
def _(name, folder, good):
    (folder / "bad.png").write_text("not an image")
    return Case(name, _predict(good["a.png"], folder / "bad.png", good["b.png"], weights=good["cifar"]), "partial", "bad.png")


# ---------------------------------------------------------------- running

def build_corpus(folder: Path, names: list[str] | None = None) -> tuple[list[Case], dict[str, Path]]:
    """Write the good files and every case's input under `folder`."""
    good = write_good_files(folder / "good")
    cases_dir = folder / "cases"
    cases_dir.mkdir(exist_ok=True)
    return [BUILDERS[name](cases_dir, good) for name in names or BUILDERS], good


# Runs the CLI and writes its peak RSS (KiB) to argv[1]. It exists because Linux counts a parent's
# peak RSS into a child that it forks (or vforks) and that then execs: measured straight from a
# large test process, every child would "peak" at the test process's size. This launcher is small.
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "alexnet_lab", *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_cli_measured(args: tuple[str, ...], env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run `python -m alexnet_lab ARGS`; exit status, output, seconds and the CLI process's own peak RSS (MB)."""
    import tempfile

    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    with tempfile.TemporaryDirectory() as work:
        rss_file = Path(work) / "maxrss"
        start = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, "-c", _LAUNCHER, str(rss_file), *args], capture_output=True,
                                    text=True, env=full_env, stdin=subprocess.DEVNULL, timeout=timeout)
            returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stdout, stderr = -9, str(exc.stdout or ""), f"timed out after {timeout} s"
        seconds = time.perf_counter() - start
        peak = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
    return {"returncode": returncode, "stdout": stdout, "stderr": stderr, "seconds": seconds, "peak_rss_mb": peak}


def judge(case_: Case, result: dict) -> list[str]:
    """What went wrong with a run ([] when it behaved as the case demands)."""
    problems = []
    lines = result["stderr"].strip().splitlines()
    if "Traceback" in result["stderr"] or "Traceback" in result["stdout"]:
        problems.append("traceback")
    if case_.expect == "error":
        if result["returncode"] == 0:
            problems.append("exit status 0")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif case_.words and case_.words not in lines[0]:
            problems.append(f"stderr lacks {case_.words!r}")
    elif case_.expect == "verify-fail":
        if result["returncode"] != 1:
            problems.append(f"exit status {result['returncode']}, expected 1")
        if f"FAILED (" not in result["stdout"] or case_.words not in result["stdout"].splitlines()[-1]:
            problems.append(f"check {case_.words!r} did not FAIL")
    elif case_.expect == "partial":
        if result["returncode"] == 0 or len(lines) != 1 or case_.words not in lines[0]:
            problems.append("the bad image was not reported alone on stderr with a non-zero exit")
        try:
            doc = json.loads(result["stdout"])
            if [("error" in entry, "predictions" in entry) for entry in doc] != [(False, True), (True, False), (False, True)]:
                problems.append("the JSON does not hold predictions, error, predictions")
        except ValueError:
            problems.append("stdout is not one JSON document")
    return problems
