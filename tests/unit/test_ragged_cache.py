"""The decoded cache's ragged store (data.ragged, data.cache): whole images with their aspect kept,
evaluation squares identical to decoding the files (also through `evaluate --cache-dir`), training
views drawn over the whole stored image, the jpeg format, and hostile caches: a damaged index or
data file, files changed since, 1xN and unreadable images, a read-only folder, two builders at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import PreprocessSpec
from alexnet_lab.data import IMAGENET_AUGMENT, AugmentSpec, ImageReadError, read_class_folder
from alexnet_lab.data.cache import cached_store, evaluation_store
from alexnet_lab.data.datasets import decode_all
from alexnet_lab.data.ragged import CachedImages, StoreFormat
from alexnet_lab.data.train_views import random_resized_view

SPEC = PreprocessSpec(resize=32, crop=28, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name="t32")  # shorter side
SIZES = [(60, 45), (45, 60), (96, 32), (40, 40), (33, 70), (64, 48)]  # width x height: landscape, portrait, 3:1, ...
SRC = str(Path(__file__).resolve().parents[2] / "src")


def photo(path: Path, width: int, height: int, seed: int = 0, noise: float = 6.0) -> str:
    """A photo-like JPEG: a smooth field of colour, a stripe texture and a little noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels += 30 * np.sin(xx / 5.0 + yy / 7.0)[..., None] + rng.normal(0, noise, pixels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return str(path)


def folder(root: Path, sizes=SIZES) -> Path:
    old = time.time() - 3600  # changed an hour ago: not 'racy', so the stamps alone decide
    for i, (width, height) in enumerate(sizes):
        os.utime(photo(root / f"c{i % 2}" / f"{i}.jpg", width, height, i), (old, old))
    return root


def rebuilt(index, spec=SPEC, cache=None, **kw):
    """cached_store's answer, checked against decoding the files."""
    images, labels, bad, reused = cached_store(index, spec, "pil", cache, **kw)
    memory, memory_labels, memory_bad = decode_all(index, spec)
    np.testing.assert_array_equal(np.asarray(images), memory)
    assert labels.tolist() == memory_labels.tolist() and bad == memory_bad
    return images, reused


def generation(cache: Path) -> tuple[Path, dict]:
    (key,) = list(cache.iterdir())
    return key, json.loads((key / "meta.json").read_text())


@pytest.mark.parametrize("resize_mode", ["shorter", "square"])
def test_the_store_keeps_whole_images_and_its_squares_are_the_files_own(tmp_path, resize_mode):
    index = read_class_folder(folder(tmp_path / "data"))
    spec = replace(SPEC, resize_mode=resize_mode)
    images, _ = rebuilt(index, spec, tmp_path / "cache")
    shapes = [tuple(row) for row in images.index[:, 7:9]]
    by_name = {Path(s.path).name: s for s in index.samples}
    expected = []
    for sample in index.samples:
        width, height = SIZES[int(Path(sample.path).stem)]
        if resize_mode == "square":
            expected.append((32, 32))
        else:  # the shorter side at 32, the aspect kept
            expected.append((32, int(32 * width / height)) if height <= width else (int(32 * height / width), 32))
    assert shapes == expected and len(by_name) == len(SIZES)
    assert images.shape == (len(SIZES), 32, 32, 3)


def test_a_training_view_is_drawn_over_the_whole_stored_image_like_the_files(tmp_path):
    path = photo(tmp_path / "p" / "a" / "wide.jpg", 300, 150, noise=0.0)  # 2:1: a centre square would lose half
    index = read_class_folder(tmp_path / "p")
    spec = replace(SPEC, resize=96, crop=64)
    images = cached_store(index, spec, "pil", tmp_path / "cache")[0]
    assert tuple(images.index[0, 7:9]) == (96, 192)
    plain = AugmentSpec(random_resized_crop=IMAGENET_AUGMENT.random_resized_crop)
    gaps, other = [], []
    for seed in range(8):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        cached, streamed = images.train_view(0, plain, 64, a), random_resized_view(path, plain, 64, b)
        assert a.random() == b.random()  # the same draws: the box is drawn on the photo's own size
        assert cached.shape == (64, 64, 3)
        gaps.append(np.abs(cached.astype(int) - streamed).mean())
        other.append(np.abs(cached.astype(int) - random_resized_view(path, plain, 64, np.random.default_rng(seed + 50))).mean())
    # the same region, resampled from a third of the pixels (the box rounded to whole stored pixels):
    # a few grey levels apart on this striped photo, where another box is tens of levels away
    assert np.mean(gaps) < 8 and max(gaps) < 15 and np.mean(other) > 3 * np.mean(gaps)
    lefts = {images.train_view(0, replace(plain, random_resized_crop=((0.05, 0.06), (1.0, 1.0))), 8,
                               np.random.default_rng(s))[4, 4, 0] for s in range(30)}
    assert len(lefts) > 10  # small boxes land all over the 2:1 image, not in a centre square


def test_the_torch_loader_cuts_imagenet_views_from_the_cache(tmp_path):
    import torch

    from alexnet_lab.train.torch.data import StoreDataset, loader_workers

    images, labels = cached_store(read_class_folder(folder(tmp_path / "data")), SPEC, "pil", tmp_path / "c")[:2]
    dataset = StoreDataset(images, labels, 28, IMAGENET_AUGMENT, seed=1)
    view, label = dataset[2]
    rng = np.random.default_rng([1, 0, 2])
    from alexnet_lab.train.torch.data import resized_crop_uint8

    np.testing.assert_array_equal(view.numpy(), images.train_view(2, IMAGENET_AUGMENT, 28, rng, resized_crop_uint8))
    assert label == labels[2] and loader_workers(0, images, torch.device("cuda")) >= 1
    import pickle

    again = pickle.loads(pickle.dumps(images))  # what a spawned DataLoader worker gets: the path, not the map
    assert len(pickle.dumps(images)) < 4096 and np.array_equal(np.asarray(again), np.asarray(images))


def test_the_jpeg_format_is_smaller_close_and_never_read_by_evaluation(tmp_path):
    index = read_class_folder(folder(tmp_path / "data", [(200, 150)] * 4))
    raw = cached_store(index, SPEC, "pil", tmp_path / "cache")[0]
    jpeg = cached_store(index, SPEC, "pil", tmp_path / "cache", fmt=StoreFormat("jpeg", 90))[0]
    assert jpeg.fmt.kind == "jpeg" and jpeg.path.stat().st_size < raw.path.stat().st_size / 2
    assert np.abs(np.asarray(jpeg).astype(int) - np.asarray(raw)).mean() < 4.0
    assert jpeg.train_view(0, IMAGENET_AUGMENT, 28, np.random.default_rng(0)).shape == (28, 28, 3)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # its own key
    evaluated = evaluation_store(index, SPEC, tmp_path / "cache")[0]
    assert evaluated.fmt.kind == "raw"


def test_a_1xn_image_is_stored_whole_and_one_beyond_the_aspect_bound_is_skipped_and_listed(tmp_path):
    root = folder(tmp_path / "data", SIZES[:2])
    Image.new("RGB", (20, 1), (9, 90, 200)).save(root / "c0" / "strip.png")  # 20:1, within the 32:1 bound
    Image.new("RGB", (1000, 1), (9, 90, 200)).save(root / "c1" / "line.png")  # 1000:1: refused by the guard
    index = read_class_folder(root)
    images, labels, bad, _ = cached_store(index, SPEC, "pil", tmp_path / "cache")
    assert bad == [str(root / "c1" / "line.png")] and len(images) == 3
    strip = [i for i, name in enumerate(images.names) if name.endswith("strip.png")][0]
    assert tuple(images.index[strip, 7:9]) == (32, 640) and tuple(images[strip][0, 0]) == (9, 90, 200)
    assert images.train_view(strip, IMAGENET_AUGMENT, 28, np.random.default_rng(0)).shape == (28, 28, 3)
    with pytest.raises(ImageReadError, match="line.png"):
        cached_store(index, SPEC, "pil", tmp_path / "cache", strict=True)  # --strict: the listed one raises


def test_an_image_changed_since_gets_its_new_shape_and_the_others_are_copied(tmp_path):
    index = read_class_folder(folder(tmp_path / "data"))
    rebuilt(index, cache=tmp_path / "cache")
    target = Path(index.samples[1].path)
    photo(target, 90, 30, seed=99)  # a new aspect at the same path
    images, reused = rebuilt(index, cache=tmp_path / "cache")
    assert reused and tuple(images.index[1, 7:9]) == (32, 96)


def _damage(key: Path, meta: dict, how: str) -> None:
    gen = meta["generation"]
    data, index = key / f"data-{gen}.bin", key / f"index-{gen}.npy"
    rows = np.load(index)
    if how == "garbage meta":
        (key / "meta.json").write_text("{not json")
    elif how == "truncated index":
        index.write_bytes(index.read_bytes()[:100])
    elif how == "truncated data":
        data.write_bytes(data.read_bytes()[:-10])
    elif how == "overlapping rows":
        rows[1, 5] = 0
        np.save(index, rows)
    elif how == "huge header":
        header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 11), }"
        index.write_bytes(b"\x93NUMPY\x01\x00" + len(header + b"\n").to_bytes(2, "little") + header + b"\n")
    elif how == "object index":
        np.save(index, np.array([{"a": 1}] * len(rows), dtype=object), allow_pickle=True)
    elif how == "path in generation":
        (key / "meta.json").write_text(json.dumps({**meta, "generation": "../../etc/passwd"}))
    elif how == "relabelled":
        rows[rows[:, 0] >= 0, 0] = rows[rows[:, 0] >= 0, 0][::-1]
        np.save(index, rows)


@pytest.mark.parametrize("how", ["garbage meta", "truncated index", "truncated data", "overlapping rows",
                                 "huge header", "object index", "path in generation", "relabelled"])
def test_a_damaged_cache_is_built_again_never_read(tmp_path, how, caplog):
    index = read_class_folder(folder(tmp_path / "data"))
    rebuilt(index, cache=tmp_path / "cache")
    _damage(*generation(tmp_path / "cache"), how)
    images, reused = rebuilt(index, cache=tmp_path / "cache")
    assert not reused and "building it again" in caplog.text


def test_a_row_with_a_wrong_shape_is_refused_when_read(tmp_path):
    index = read_class_folder(folder(tmp_path / "data"))
    images = cached_store(index, SPEC, "pil", tmp_path / "cache")[0]
    height, width = images.index[0, 7:9]
    images.index[0, 7:9] = height // 2, width * 2  # the same byte count, but the shorter side is not the store's
    assert not images[0].any()  # black, and logged
    strict = CachedImages(images.path, images.index, SPEC, images.fmt, images.names, strict=True)
    with pytest.raises(ImageReadError, match="store size"):
        strict[0]


def test_a_corrupt_jpeg_row_reads_black_or_raises_when_strict(tmp_path):
    index = read_class_folder(folder(tmp_path / "data"))
    images = cached_store(index, SPEC, "pil", tmp_path / "cache", fmt=StoreFormat("jpeg"))[0]
    offset = int(images.index[1, 5])
    data = bytearray(images.path.read_bytes())
    data[offset : offset + 40] = b"\0" * 40  # the JPEG header of row 1, in place: sizes still agree
    images.path.write_bytes(bytes(data))
    images = CachedImages(images.path, images.index, SPEC, images.fmt, images.names)
    assert images[0].any() and not images[1].any()
    with pytest.raises(ImageReadError, match="delete the cache"):
        CachedImages(images.path, images.index, SPEC, images.fmt, images.names, strict=True)[1]


def test_a_read_only_cache_is_read_and_one_that_must_be_written_is_one_line(tmp_path, monkeypatch):
    from alexnet_lab.data import cache as cache_module

    index = read_class_folder(folder(tmp_path / "data"))
    rebuilt(index, cache=tmp_path / "cache")

    def refused(path):  # what a read-only file system answers (also to root, whom chmod would not stop)
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(cache_module, "atomic_path", refused)
    assert rebuilt(index, cache=tmp_path / "cache")[1]  # complete and current: read, nothing written
    with pytest.raises(UserInputError, match=r"cannot write the decoded cache .*\(Read-only file system\); pass a writable"):
        cached_store(index.subset(range(3)), SPEC, "pil", tmp_path / "cache")  # another key: must be built
    if os.name == "posix" and os.geteuid() != 0:  # a real read-only folder too, where permissions apply
        monkeypatch.undo()
        (tmp_path / "cache").chmod(0o555)
        try:
            with pytest.raises(UserInputError, match="writable --cache-dir"):
                cached_store(index.subset(range(2)), SPEC, "pil", tmp_path / "cache")
        finally:
            (tmp_path / "cache").chmod(0o755)


def test_two_processes_building_one_cache_at_once_both_get_it_whole(tmp_path):
    index = read_class_folder(folder(tmp_path / "data", SIZES * 8))
    script = ("import sys; from alexnet_lab.core.preprocessing import PreprocessSpec as P; "
              "from alexnet_lab.data import read_class_folder as r; from alexnet_lab.data.cache import cached_store as c; "
              f"i = r(sys.argv[1]); x = c(i, P(**{SPEC.to_dict()!r}), 'pil', sys.argv[2])[0]; print(len(x))")
    env = {**os.environ, "PYTHONPATH": SRC}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "data"), str(tmp_path / "cache")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outs
    assert [out.strip() for out, _ in outs] == [str(len(index))] * 2
    key, _ = generation(tmp_path / "cache")
    assert len(list(key.iterdir())) == 3  # meta.json, one data file, one index: no temporary left
    assert rebuilt(index, cache=tmp_path / "cache")[1]


def test_evaluate_gives_the_same_json_with_and_without_the_cache(tmp_path, capsys):
    import torch

    from alexnet_lab.cli.main import main
    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.data.synthetic import SyntheticSpec, synthetic_class_names, write_synthetic_folder
    from alexnet_lab.frameworks import get_backend
    from alexnet_lab.weights.files import save_weights

    torch.manual_seed(0)
    spec = PreprocessSpec(resize=40, crop=32, name="test-40-32")  # shorter side: the aspect matters
    tensors = get_backend("torch").to_canonical(get_backend("torch").build_model("cifar", 10))
    weights = save_weights(WeightBundle(tensors, ModelMeta("cifar", synthetic_class_names(10), spec)),
                           tmp_path / "w.safetensors")
    data = write_synthetic_folder(SyntheticSpec(per_class=2, seed=4), tmp_path / "data")
    for i, path in enumerate(sorted(data.rglob("*.png"))):  # odd aspects, one unreadable file
        width, height = SIZES[i % len(SIZES)]
        Image.open(path).convert("RGB").resize((width * 2, height * 2), Image.BICUBIC).save(path)
    next(iter(sorted(data.rglob("*.png")))).write_bytes(b"broken")
    reports = []
    for extra in ([], ["--cache-dir", str(tmp_path / "cache")], ["--cache-dir", str(tmp_path / "cache")]):
        assert main(["evaluate", str(weights), "--data", str(data), "--device", "cpu", "--json", *extra]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1] == reports[2] and reports[0]["num_images"] == 19
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert main(["evaluate", str(weights), "--data", str(data), "--cache-dir", str(data / "cache")]) != 0
    assert "inside the input folder" in capsys.readouterr().err and not (data / "cache").exists()


def test_evaluation_refuses_a_preprocessing_without_a_store_size(tmp_path):
    index = read_class_folder(folder(tmp_path / "data"))
    with pytest.raises(UserInputError, match="no store size"):
        evaluation_store(index, replace(SPEC, resize_mode="none"), tmp_path / "cache")


def test_verify_scores_the_preprocessings_alike_from_the_cache(tmp_path):
    import torch

    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.data.synthetic import SyntheticSpec, synthetic_class_names, write_synthetic_folder
    from alexnet_lab.frameworks import get_backend
    from alexnet_lab.verify.preprocessing import labelled_index, score_candidates

    torch.manual_seed(0)
    spec = PreprocessSpec(resize=40, crop=32, name="test-40-32")
    tensors = get_backend("torch").to_canonical(get_backend("torch").build_model("cifar", 10))
    bundle = WeightBundle(tensors, ModelMeta("cifar", synthetic_class_names(10), spec))
    data = write_synthetic_folder(SyntheticSpec(per_class=1, seed=5), tmp_path / "data")
    for i, path in enumerate(sorted(data.rglob("*.png"))):
        width, height = SIZES[i % len(SIZES)]
        Image.open(path).convert("RGB").resize((width, height), Image.BICUBIC).save(path)
    index = labelled_index(data)
    files = score_candidates(bundle, index, "torch", "cpu")
    cached = score_candidates(bundle, index, "torch", "cpu", cache_dir=str(tmp_path / "cache"))
    assert files == cached and "resize square" in files
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one store per resize: shorter and square


def test_verify_refuses_a_cache_without_images(capsys):
    from alexnet_lab.cli.main import main

    assert main(["verify", "bvlc", "--cache-dir", "somewhere"]) != 0
    assert "--cache-dir caches the images of --images" in capsys.readouterr().err


def test_the_keras_pipeline_reads_whole_image_views_from_the_cache(tmp_path):
    pytest.importorskip("tensorflow")
    from alexnet_lab.data.datasets import normalisation
    from alexnet_lab.evaluate.dataset_eval import normalised_batch
    from alexnet_lab.train.keras.data import StorePipeline, epoch_order, uses_tf_data

    images, labels = cached_store(read_class_folder(folder(tmp_path / "data")), SPEC, "pil", tmp_path / "c")[:2]
    norm = normalisation(SPEC)
    pipeline = StorePipeline(images, labels, 28, norm, IMAGENET_AUGMENT, seed=3)
    x, y = next(iter(pipeline.batches(4, epoch=1)))
    order = epoch_order(len(labels), 3, 1)[:4]
    views = np.stack([images.train_view(int(i), IMAGENET_AUGMENT, 28, np.random.default_rng([3, 1, int(i)]))
                      for i in order])
    np.testing.assert_allclose(np.asarray(x), normalised_batch(views, 28, norm), atol=1e-6)
    assert np.asarray(y).tolist() == labels[order].tolist() and uses_tf_data()
    x, _ = next(iter(pipeline.batches(4)))  # evaluation: the centre crop of the square, as from the files
    np.testing.assert_allclose(np.asarray(x), normalised_batch(images[:4], 28, norm), atol=1e-6)
