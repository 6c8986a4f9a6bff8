"""Shared fixtures: real files in real formats, generated once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# With the pinned versions, importing TensorFlow before torchvision segfaults (the other order
# works). Importing torchvision here, before any test module, makes the suite independent of which
# test file is collected first; the commands themselves keep to one framework per process.
import torchvision  # noqa: F401, E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint8 RGB image with structure at several scales (not white noise)."""
    coarse = rng.uniform(0, 255, size=(max(2, height // 32), max(2, width // 32), 3))
    rows = np.linspace(0, coarse.shape[0] - 1, height)
    cols = np.linspace(0, coarse.shape[1] - 1, width)
    image = coarse[np.round(rows).astype(int)][:, np.round(cols).astype(int)]
    image = image + rng.normal(0, 20, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def image_paths(tmp_path_factory) -> list[Path]:
    """Eight PNG files of different sizes and aspect ratios."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1234)
    sizes = [(256, 256), (300, 400), (480, 320), (227, 227), (500, 333), (240, 260), (350, 350), (600, 450)]
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = folder / f"img{i}.png"
        Image.fromarray(smooth_image(rng, h, w)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def torchvision_pth(tmp_path_factory) -> Path:
    """A randomly initialised torchvision AlexNet saved with torch.save, fc8 scaled x50 so the
    logits spread over a few units (top-5 is then a meaningful comparison)."""
    import torch

    torch.manual_seed(0)
    state = torchvision.models.alexnet().state_dict()
    state["classifier.6.weight"] *= 50
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(state, path)
    return path


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m alexnet_lab ARGS` in a fresh process (as a user would)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "alexnet_lab", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


@pytest.fixture(scope="session")
def trained_shapes_bundle():
    """The 'cifar' AlexNet trained briefly (PyTorch, Adam, 3 epochs on 2,000 synthetic 32x32 images
    of seed 0) into a WeightBundle with the cifar-32 preprocessing: a model that has learned
    shapes and colours, for the checks that need one (Grad-CAM sanity, localisation, preprocessing).
    About a minute on two CPU cores; tests using it are marked slow."""
    import torch

    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import CIFAR_32 as CIFAR_PREPROCESS
    from alexnet_lab.data.synthetic import SyntheticSpec, make_synthetic, synthetic_class_names
    from alexnet_lab.frameworks import get_backend

    torch.manual_seed(0)
    backend = get_backend("torch")
    images, labels = make_synthetic(SyntheticSpec(per_class=200, seed=0))
    x = torch.from_numpy(CIFAR_PREPROCESS.normalize(images)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels)
    model = backend.build_model("cifar", 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(3):
        for batch in torch.randperm(len(x)).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    meta = ModelMeta(variant="cifar", categories=synthetic_class_names(10), preprocess=CIFAR_PREPROCESS,
                     source="tests: trained_shapes_bundle")
    return WeightBundle(backend.to_canonical(model), meta)
