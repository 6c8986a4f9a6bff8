"""The bad-input corpus machinery: Case, the registry of case builders, the good files they
start from, shared file helpers, and the measured CLI run and its verdict.

A case says what the CLI must do:
  * "error": a non-zero exit, exactly one line on stderr, no traceback;
  * "verify-fail": `alexnet verify` exits 1 with the named check FAILed (verify's table on stdout);
  * "partial": `predict` reports the bad images, one stderr line each, predicts the rest, exits non-zero;
  * "ok": the command succeeds (exit 0, no traceback) and its `check` finds the answer right:
    a hostile input that must be handled, not refused (a link loop walked once, say).
Every case may name files it must not touch (`protect`): their bytes are hashed before the run and
compared after, so a refusal that still destroys something is caught as a lost file. A case's
`surface` is the command it exercises (its first argument unless given).
`run_cli_measured` measures each run's peak resident memory (the CLI process's own ru_maxrss).
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alexnet_lab.core.preprocessing import PreprocessSpec

REPO = Path(__file__).resolve().parents[3]
assert (REPO / "src" / "alexnet_lab").is_dir(), REPO  # else the runs would test an installed copy
CIFAR_PREPROCESS = PreprocessSpec(resize=32, resize_mode="square", crop=32)  # as train.run's, without CIFAR statistics


@dataclass(frozen=True)
class Case:
    """One hostile input: the CLI arguments and what must happen."""

    name: str
    args: tuple[str, ...]
    expect: str = "error"  # error | verify-fail | partial | ok
    words: str = ""  # text the stderr line must hold (error), or the check that must FAIL (verify-fail)
    env: dict[str, str] = field(default_factory=dict)
    protect: tuple[Path, ...] = ()  # files whose bytes the run must leave as they were
    check: Callable[[dict], list[str]] | None = field(default=None, compare=False)  # what is wrong with the answer
    surface: str = ""  # the command exercised; args[0] when empty

    @property
    def command(self) -> str:
        return self.surface or self.args[0]


BUILDERS: dict[str, Callable[[Path, dict[str, Path]], Case]] = {}

# cases whose command imports a framework before it finishes (torch's import alone peaks at ~700 MB):
# their memory is not a measure of what the hostile input costs
FRAMEWORK_CASES = {"pickle-with-code.pth", "bit-flip.pth", "batch-with-one-bad-image",
                   "predict-a-1xN-image-among-good-ones", "evaluate-a-folder-with-link-loops-and-a-1xN-image",
                   "explain-a-1xN-image-among-good-ones", "features-a-1xN-image-among-good-ones"}


def case(name: str):
    """Register a builder; it gets a folder of its own, so cases built side by side never share files."""
    def register(builder):
        BUILDERS[name] = lambda folder, good: builder(name, _own_folder(folder, name), good)
        return builder
    return register


def _own_folder(folder: Path, name: str) -> Path:
    own = folder / f"{name}.case"
    own.mkdir(parents=True, exist_ok=True)
    return own


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

    from alexnet_lab.weights.files import default_preprocess, save_weights

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


def _verify(path: Path) -> tuple[str, ...]:
    return ("verify", str(path), "--no-framework-parity")


def _predict(*images: Path, weights: Path) -> tuple[str, ...]:
    return ("predict", *map(str, images), "--weights", str(weights), "--json")


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


def snapshot(paths: tuple[Path, ...]) -> dict[Path, str | None]:
    """sha256 of each protected file (None: absent), taken before a run."""
    import hashlib

    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in paths}


def lost_files(before: dict[Path, str | None]) -> list[str]:
    """The protected files a run deleted or changed."""
    after = snapshot(tuple(before))
    return [f"{p.name} {'deleted' if after[p] is None else 'changed'}" for p in before if after[p] != before[p]]


def judge(case_: Case, result: dict) -> list[str]:
    """What went wrong with a run ([] when it behaved as the case demands). Kinds of problem:
    "traceback", "silent wrong answer: ..." (exit 0 where a refusal was due, or a wrong answer),
    "lost: ..." (from lost_files, added by the caller), and the rest (message shape)."""
    problems = []
    lines = result["stderr"].strip().splitlines()
    if "Traceback" in result["stderr"] or "Traceback" in result["stdout"]:
        problems.append("traceback")
    if case_.expect == "error":
        if result["returncode"] == 0:
            problems.append("silent wrong answer: exit status 0")
        elif case_.check is not None:  # refused the bad part: was the rest still done?
            problems += case_.check(result)
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif case_.words and case_.words not in lines[0]:
            problems.append(f"stderr lacks {case_.words!r}")
    elif case_.expect == "verify-fail":
        if result["returncode"] != 1:
            problems.append(f"exit status {result['returncode']}, expected 1")
        if "FAILED (" not in result["stdout"] or case_.words not in result["stdout"].splitlines()[-1]:
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
    elif case_.expect == "ok":
        if result["returncode"] != 0:
            problems.append(f"exit status {result['returncode']}: {lines[-1] if lines else ''}")
        elif case_.check is not None:
            problems += [f"silent wrong answer: {p}" for p in case_.check(result)]
    return problems


def run_case(case_: Case) -> tuple[dict, list[str]]:
    """Run one case: the measured result and every problem, files lost included."""
    before = snapshot(case_.protect)
    result = run_cli_measured(case_.args, case_.env)
    return result, judge(case_, result) + [f"lost: {p}" for p in lost_files(before)]
