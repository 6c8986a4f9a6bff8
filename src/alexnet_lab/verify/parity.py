"""Cross-framework parity: the same weights must give the same logits in PyTorch and Keras.

Both models are built from the bundle and fed the same images, preprocessed the way the weights
expect. Tolerance: max |logit difference| <= 1e-4 x the logit scale (the largest |logit| of the
PyTorch run) — float32 convolutions summed in a different order differ at about 1e-6 relative,
so 1e-4 leaves room for that and none for a real layout error, which moves logits by O(1). Top-1
must agree on every image; top-5 agreement is reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, UserInputError
from alexnet_lab.frameworks import FRAMEWORKS
from alexnet_lab.verify.checks import FAIL, PASS, Check
from alexnet_lab.verify.worker import IMPORT_ERROR, WATCHED

NAME = "framework-parity"
RELATIVE_TOLERANCE = 1e-4


def generated_images(count: int = 4, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 RGB test pictures (the synthetic dataset's shapes and textures)."""
    from alexnet_lab.data.synthetic import SYNTHETIC_CLASSES, SyntheticSpec, synthetic_sample

    spec = SyntheticSpec(num_classes=len(SYNTHETIC_CLASSES), size=size, per_class=1, seed=seed)
    return [synthetic_sample(spec, index)[0] for index in range(count)]


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in `folder`, in name order (nothing is decoded yet).

    Raises:
        UserInputError: the folder does not exist or holds no image file.
    """
    from alexnet_lab.data.images import is_image_path
    from alexnet_lab.data.walk import list_files

    path = Path(folder)
    if not path.is_dir():
        raise UserInputError(f"--images expects a folder of image files; received '{folder}', which is not a folder.")
    files = [Path(p) for p in list_files(path, is_image_path, recursive=False)]  # the one folder walker
    if not files:
        raise UserInputError(f"no image files (.jpg, .png, ...) in '{folder}'; pass a folder that holds some.")
    return files


def folder_images(folder: str | os.PathLike[str]) -> list[np.ndarray]:
    """Every image in `folder` as a uint8 RGB array, in name order."""
    from alexnet_lab.data.images import read_image_rgb

    return [read_image_rgb(p) for p in image_files(folder)]


def _top(logits: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def parity_figures(reference: np.ndarray, other: np.ndarray) -> dict[str, float | int]:
    """Max |difference|, the tolerance it is held to, and top-1 / top-5 agreement fractions."""
    scale = float(np.abs(reference).max())
    k = min(5, reference.shape[1])
    top5 = [set(a) == set(b) for a, b in zip(_top(reference, k), _top(other, k))]
    return {
        "num_images": int(len(reference)),
        "max_abs_logit_diff": float(np.abs(reference.astype(np.float64) - other).max()),
        "logit_scale": scale,
        "tolerance": RELATIVE_TOLERANCE * scale,
        "top1_agreement": float(np.mean(_top(reference, 1)[:, 0] == _top(other, 1)[:, 0])),
        "top5_agreement": float(np.mean(top5)),
    }


def framework_logits(bundle: WeightBundle, batches: Mapping[str, np.ndarray],
                     framework: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """fp32 logits of `framework` for each named batch (preprocessed N x H x W x 3 float32), all
    computed in one fresh process (see verify.worker) with the model built once; and the
    frameworks that process loaded.

    Raises:
        ImportError: the framework is not installed.
        RuntimeError: the worker failed (its last stderr lines are in the message).
    """
    from alexnet_lab.weights.formats.safetensors_io import write_safetensors

    # the folder that holds the alexnet_lab package (this file is alexnet_lab/verify/parity.py); not
    # `import alexnet_lab` for its path: the public face imports verify, a circle
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="alexnet-parity-") as tmp:
        weights, batch_path, out = Path(tmp, "w.safetensors"), Path(tmp, "batches.npz"), Path(tmp, "logits.npz")
        write_safetensors(bundle, weights, records=False)  # handed to the worker, deleted after
        np.savez(batch_path, **batches)
        try:
            proc = subprocess.run([sys.executable, "-m", "alexnet_lab.verify.worker", framework, str(weights),
                                   str(batch_path), str(out)], capture_output=True, text=True, env=env,
                                  timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AlexnetLabError(f"the {framework} logits process did not finish in {WORKER_TIMEOUT_S} s") from None
        report = _last_json_line(proc.stdout)
        if proc.returncode == IMPORT_ERROR:
            raise ImportError(report.get("error", framework))
        if proc.returncode != 0 or "modules" not in report:
            raise AlexnetLabError(f"the {framework} logits process failed (exit {proc.returncode}): "
                                  + (" | ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"))
        with np.load(out, allow_pickle=False) as found:
            return {name: found[name] for name in found.files}, report["modules"]


WORKER_TIMEOUT_S = 1800


def _last_json_line(stdout: str) -> dict:
    """The worker's report (its last stdout line), or {} when it printed none that parses."""
    lines = stdout.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def parity_check(torch_logits: np.ndarray, keras_logits: np.ndarray, processes: dict | None = None) -> Check:
    """The framework-parity verdict on the two frameworks' logits of the same images; `processes`
    (framework -> modules its process loaded, and the verifying process's own) is reported."""
    figures = parity_figures(torch_logits, keras_logits)
    if processes is not None:
        figures["processes"] = {**processes, "verify": sorted(name for name in WATCHED if name in sys.modules)}
    summary = (f"{figures['num_images']} images: max |logit diff| {figures['max_abs_logit_diff']:.2e} "
               f"(tolerance {figures['tolerance']:.2e} = 1e-4 x scale {figures['logit_scale']:.3g}), "
               f"top-1 agreement {figures['top1_agreement']:.0%}, top-5 {figures['top5_agreement']:.0%}")
    ok = figures["max_abs_logit_diff"] <= figures["tolerance"] and figures["top1_agreement"] == 1.0
    return Check(NAME, PASS if ok else FAIL, summary, figures)


def both_frameworks(bundle: WeightBundle, batches: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """framework -> batch name -> logits, and framework -> modules its process loaded, for PyTorch
    and Keras (each in a process of its own, see framework_logits)."""
    logits, processes = {}, {}
    for framework in FRAMEWORKS:
        logits[framework], processes[framework] = framework_logits(bundle, batches, framework)
    return logits, processes
