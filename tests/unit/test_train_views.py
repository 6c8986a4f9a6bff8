"""Training views cut from the whole photo (data.train_views): torchvision's box sampling over the
whole image, reduced-size decoding, the C resizes within a stated tolerance of the numpy
reference, the loader's worker threads, and the black view of an unreadable file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET, to_uint8
from alexnet_lab.core.resize import resize_bilinear
from alexnet_lab.data import IMAGENET_AUGMENT, AugmentSpec, read_image_rgb
from alexnet_lab.data.augment import resized_crop_box
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.data.train_views import decoded_with_box, pil_resized_crop, random_resized_view

# Mean absolute difference from the numpy reference (full decode, float resize, rounded), in grey
# levels of 0-255, on generated photos: the C resizes round differently (<= 1 level a pixel, 0.17
# on average over 20 photos); a reduced-size (draft) decode, taken only when the box keeps twice the
# crop, adds the DCT's own downscale and up to half a reduced pixel of box rounding (1.4 on
# average, 4.8 at worst over 20 photos of 1200x900 and 2000x1500).
RESIZE_TOLERANCE = 0.5
DRAFT_TOLERANCE = 5.0
NO_FLIP = AugmentSpec(random_resized_crop=IMAGENET_AUGMENT.random_resized_crop)


def photo(path, width: int, height: int, seed: int = 0):
    """A photo-like JPEG: smooth structure, a texture and noise, quality 90."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels += 40 * np.sin(xx / 9.0 + yy / 13.0)[..., None] + rng.normal(0, 8, pixels.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return str(path)


def reference_view(path: str, spec: AugmentSpec, crop: int, seed: int) -> np.ndarray:
    """The numpy reference: full decode, the same box (same draws), float resize, rounded."""
    pixels = read_image_rgb(path)
    top, left, h, w = resized_crop_box(*pixels.shape[:2], spec.random_resized_crop, np.random.default_rng(seed))
    return to_uint8(resize_bilinear(pixels[top : top + h, left : left + w], crop, crop))


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize("seed", range(6))
def test_pil_and_torch_resizes_are_within_tolerance_of_the_reference(tmp_path, seed):
    from alexnet_lab.train.torch.data import resized_crop_uint8

    path = photo(tmp_path / "p.jpg", 500, 375, seed)
    expected = reference_view(path, NO_FLIP, 224, seed)
    for resize in (pil_resized_crop, resized_crop_uint8):
        view = random_resized_view(path, NO_FLIP, 224, np.random.default_rng(seed), resize)
        assert view.shape == (224, 224, 3) and view.dtype == np.uint8
        assert mean_abs(view, expected) < RESIZE_TOLERANCE, resize.__name__
        pixels, box = decoded_with_box(path, NO_FLIP, 224, np.random.default_rng(seed))
        assert np.array_equal(resize(pixels, box, 224, True), resize(pixels, box, 224, False)[:, ::-1])


def test_a_large_box_is_decoded_smaller_and_stays_within_tolerance(tmp_path):
    from alexnet_lab.train.torch.data import resized_crop_uint8

    path = photo(tmp_path / "big.jpg", 2000, 1500)
    spec = AugmentSpec(random_resized_crop=((0.9, 1.0), (3 / 4, 4 / 3)))
    pixels, box = decoded_with_box(path, spec, 224, np.random.default_rng(1))
    assert pixels.shape[0] < 1500 and min(box[2], box[3]) >= 2 * 224  # draft reduced it, the box still >= 2 crop
    view = random_resized_view(path, spec, 224, np.random.default_rng(1), resized_crop_uint8)
    assert mean_abs(view, reference_view(path, spec, 224, 1)) < DRAFT_TOLERANCE


def test_the_box_is_drawn_over_the_whole_photo_like_torchvision(tmp_path):
    """Boxes wider than the shorter side occur (a centre square could never hold them), and the
    same seed draws the same box as torchvision's parameters would from the header size."""
    path = photo(tmp_path / "wide.jpg", 500, 375)
    widths = [decoded_with_box(path, IMAGENET_AUGMENT, 224, np.random.default_rng(s))[1][3] for s in range(60)]
    assert max(widths) > 375
    _, box = decoded_with_box(path, IMAGENET_AUGMENT, 224, np.random.default_rng(3))
    assert box == resized_crop_box(375, 500, IMAGENET_AUGMENT.random_resized_crop, np.random.default_rng(3))


def test_flip_and_seed_reproducibility(tmp_path):
    path = photo(tmp_path / "p.jpg", 500, 375)
    a = np.ascontiguousarray(random_resized_view(path, IMAGENET_AUGMENT, 224, np.random.default_rng(5)))
    b = random_resized_view(path, IMAGENET_AUGMENT, 224, np.random.default_rng(5))
    assert np.array_equal(a, b)
    plain = random_resized_view(path, NO_FLIP, 224, np.random.default_rng(5))
    flipped = np.random.default_rng(5)
    resized_crop_box(375, 500, NO_FLIP.random_resized_crop, flipped)
    assert np.array_equal(a, plain[:, ::-1] if flipped.random() < 0.5 else plain)


def test_store_dataset_uses_whole_photo_views_and_black_for_unreadable(tmp_path):
    import torch

    from alexnet_lab.train.torch.data import StoreDataset, make_loader

    paths = [photo(tmp_path / f"{i}.jpg", 500, 375, i) for i in range(3)]
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    store = StreamedImages([*paths, str(tmp_path / "bad.jpg")], TORCHVISION_IMAGENET)
    dataset = StoreDataset(store, np.arange(4), 224, IMAGENET_AUGMENT, seed=0)
    views = [dataset[i][0] for i in range(4)]
    assert all(v.shape == (224, 224, 3) for v in views) and int(views[3].sum()) == 0
    seen = []
    dataset.images = StreamedImages(paths, TORCHVISION_IMAGENET)
    dataset.labels = np.arange(3)
    for batch, _ in make_loader(dataset, 3, False, 0, 0, workers=1):
        seen.append(batch)
    assert seen[0].shape == (3, 224, 224, 3) and torch.equal(seen[0][0], dataset[0][0])


def test_loader_workers_run_one_thread():
    """DataLoader's own default, which step_threads counts on."""
    import torch
    from torch.utils.data import Dataset

    from alexnet_lab.train.torch.data import WorkerErrors, make_loader

    class Threads(Dataset):
        augment, epoch = None, 0

        def set_epoch(self, epoch):
            pass

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.tensor(torch.get_num_threads()), 0

    loader = make_loader(Threads(), 2, False, 0, 0, workers=1)
    assert isinstance(loader, WorkerErrors)
    assert [int(t) for batch, _ in loader for t in batch] == [1, 1]


def test_cpu_training_on_few_cores_decodes_in_its_own_process(monkeypatch):
    """The measured choice: up to INLINE_DECODE_MAX_CORES cores per process the CPU step keeps every
    core and the training process decodes; more cores, or a GPU step, get workers; --num-workers wins."""
    import torch

    from alexnet_lab.train.torch.data import INLINE_DECODE_MAX_CORES, loader_workers

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    streamed, memory = StreamedImages([], TORCHVISION_IMAGENET), np.zeros((1, 8, 8, 3), np.uint8)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for cores in (1, 2, INLINE_DECODE_MAX_CORES):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        assert loader_workers(0, streamed, cpu) == 0
        assert loader_workers(0, streamed, gpu) == max(1, cores - 1)
        assert loader_workers(3, streamed, cpu) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert loader_workers(0, streamed, cpu) == 4
    assert loader_workers(0, streamed, cpu, world_size=4) == 0  # 4 processes of 4 cores each
    assert loader_workers(0, memory, cpu) == 0 and loader_workers(2, memory, cpu) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun's: the step's threads are fixed, workers decode
    assert loader_workers(0, streamed, cpu, world_size=4) == 4


def test_step_threads_leave_the_workers_their_cores(monkeypatch):
    import torch

    from alexnet_lab.train.torch.data import step_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    try:
        streamed = StreamedImages([], TORCHVISION_IMAGENET)
        assert step_threads(1, np.zeros((1, 8, 8, 3), np.uint8), torch.device("cpu")) == before  # in memory: kept
        assert step_threads(1, streamed, torch.device("cpu")) == 3
        assert step_threads(3, streamed, torch.device("cpu")) == 1
        assert step_threads(0, streamed, torch.device("cpu"), world_size=2) == 2  # decoding in each of 2 processes
    finally:
        torch.set_num_threads(before)
