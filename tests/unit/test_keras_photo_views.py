"""Keras training views cut from the whole photo inside tf.data (train.keras.photo_views): within a
stated tolerance of the numpy reference, the same boxes as the PyTorch loader, identical batches for
the same (seed, epoch), and a folder with a PNG, odd sizes, a truncated file, a 1x300 strip and a
JPEG libjpeg refuses trained through without losing a batch; validation views unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
from alexnet_lab.data import IMAGENET_AUGMENT, AugmentSpec
from alexnet_lab.data.datasets import eval_view, normalisation
from alexnet_lab.data.images import draft_reduction, draft_size, plain_jpeg
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.evaluate.dataset_eval import normalised_batch
from tests.unit.test_train_views import DRAFT_TOLERANCE, RESIZE_TOLERANCE, mean_abs, photo, reference_view

tf = pytest.importorskip("tensorflow")

NO_FLIP = AugmentSpec(random_resized_crop=IMAGENET_AUGMENT.random_resized_crop)
NORM = normalisation(TORCHVISION_IMAGENET)


def _pipeline(paths, augment=IMAGENET_AUGMENT, seed=0, crop=224):
    from alexnet_lab.train.keras.data import StorePipeline

    store = StreamedImages([str(p) for p in paths], TORCHVISION_IMAGENET)
    return StorePipeline(store, np.arange(len(paths)) % 2, crop, NORM, augment, seed=seed)


def _views(pipeline, epoch, forced=frozenset()):
    return [v.numpy() for v, _ in pipeline.views(np.arange(len(pipeline)), epoch, forced)]


def _bad_huffman_jpeg(path, source: str) -> str:
    """A JPEG whose header PIL accepts (ending in EOI) but whose Huffman table libjpeg refuses."""
    data = bytearray(open(source, "rb").read())
    table = data.find(b"\xff\xc4")
    data[table + 5 : table + 21] = b"\xff" * 16
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("seed", range(4))
def test_views_are_within_tolerance_of_the_reference_with_the_same_box(tmp_path, seed):
    path = photo(tmp_path / "p.jpg", 500, 375, seed)
    view = _views(_pipeline([path], NO_FLIP, seed), epoch=2)[0]
    expected = reference_view(path, NO_FLIP, 224, np.random.default_rng([seed, 2, 0]))
    assert view.shape == (224, 224, 3) and view.dtype == np.uint8
    assert mean_abs(view, expected) < RESIZE_TOLERANCE


def test_a_large_box_is_decoded_at_a_reduced_scale_within_tolerance(tmp_path):
    from alexnet_lab.train.keras.photo_views import PhotoViews

    path = photo(tmp_path / "big.jpg", 2000, 1500)
    spec = AugmentSpec(random_resized_crop=((0.9, 1.0), (3 / 4, 4 / 3)))
    pipeline = _pipeline([path], spec, seed=1)
    plan = PhotoViews(pipeline.images, spec, 224, 1).plan(0, 0)
    assert bool(plan[1]) and int(plan[3]) > 0 and min(plan[2][2:]) >= 2 * 224  # reduced; the box keeps 2x crop
    view = _views(pipeline, epoch=0)[0]
    assert mean_abs(view, reference_view(path, spec, 224, np.random.default_rng([1, 0, 0]))) < DRAFT_TOLERANCE


def test_same_seed_and_epoch_give_identical_batches_and_flips_happen(tmp_path):
    paths = [photo(tmp_path / f"{i}.jpg", 500, 375, i) for i in range(6)]
    first = [(x.numpy(), y.numpy()) for x, y in _pipeline(paths, seed=7).batches(4, epoch=3)]
    again = [(x.numpy(), y.numpy()) for x, y in _pipeline(paths, seed=7).batches(4, epoch=3)]  # a resumed run
    assert [x.shape for x, _ in first] == [(4, 224, 224, 3), (2, 224, 224, 3)]
    assert all(np.array_equal(a, b) and np.array_equal(la, lb) for (a, la), (b, lb) in zip(first, again))
    other = next(iter(_pipeline(paths, seed=7).batches(4, epoch=4)))[0].numpy()
    assert not np.array_equal(first[0][0], other)
    plain, flipped = _views(_pipeline(paths[:1], NO_FLIP, 0), 0)[0], _views(_pipeline(paths[:1], seed=0), 0)[0]
    rng = np.random.default_rng([0, 0, 0])
    from alexnet_lab.data.augment import resized_crop_box

    resized_crop_box(375, 500, NO_FLIP.random_resized_crop, rng)
    assert np.array_equal(flipped, plain[:, ::-1] if rng.random() < 0.5 else plain)


def test_png_odd_sizes_and_bad_files_keep_every_batch(tmp_path, caplog):
    good = [photo(tmp_path / "a.jpg", 500, 375, 0), photo(tmp_path / "b.jpg", 333, 201, 1)]
    Image.fromarray(np.full((300, 400, 3), 120, np.uint8)).save(tmp_path / "c.png")
    content = open(good[0], "rb").read()
    (tmp_path / "truncated.jpg").write_bytes(content[: len(content) // 2])
    Image.fromarray(np.full((1, 300, 3), 50, np.uint8)).save(tmp_path / "strip.jpg")
    huffman = _bad_huffman_jpeg(tmp_path / "huffman.jpg", good[0])
    paths = [*good, str(tmp_path / "c.png"), str(tmp_path / "truncated.jpg"), str(tmp_path / "strip.jpg"), huffman]
    pipeline = _pipeline(paths, seed=2)
    batches = [x.numpy() for x, _ in pipeline.batches(3, epoch=0)]
    assert [b.shape[0] for b in batches] == [3, 3]
    views = _views(pipeline, 0, forced=frozenset({5}))
    black = [int(v.sum()) == 0 for v in views]
    assert black == [False, False, False, True, True, True]
    png = pipeline.images.train_view(2, IMAGENET_AUGMENT, 224, np.random.default_rng([2, 0, 2]))
    assert np.array_equal(views[2], png)  # read by the shared PIL path, the same draws
    from alexnet_lab.train.keras.data import epoch_order

    order = epoch_order(6, 2, 0)
    expected = normalised_batch(np.stack([views[i] for i in order[:3]]), 224, NORM)
    np.testing.assert_allclose(batches[0], expected, atol=1e-5)
    assert "strip.jpg" in caplog.text and "truncated.jpg" in caplog.text and "reading that batch through PIL" in caplog.text


def test_validation_batches_keep_the_stored_centre_view(tmp_path):
    paths = [photo(tmp_path / f"{i}.jpg", 500, 375, i) for i in range(3)]
    pipeline = _pipeline(paths)
    store = pipeline.images
    expected = normalised_batch(np.stack([eval_view(store[i], 224) for i in range(3)]), 224, NORM)
    (x, _), = list(pipeline.batches(3))
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_plain_jpeg_passes_only_what_tensorflow_decodes_like_pil(tmp_path):
    path = photo(tmp_path / "ok.jpg", 320, 240)
    content, height, width = plain_jpeg(path)
    assert (height, width) == (240, 320) and content == open(path, "rb").read()
    Image.open(path).convert("CMYK").save(tmp_path / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(path).save(tmp_path / "turned.jpg", exif=exif)
    Image.open(path).save(tmp_path / "png.jpg", format="PNG")
    Image.fromarray(np.zeros((1, 300, 3), np.uint8)).save(tmp_path / "strip.jpg")
    (tmp_path / "cut.jpg").write_bytes(content[:-100])
    for name in ("cmyk.jpg", "turned.jpg", "png.jpg", "strip.jpg", "cut.jpg", "missing.jpg"):
        assert plain_jpeg(tmp_path / name) is None, name


@pytest.mark.parametrize("size", [(500, 375), (2000, 1500), (1001, 333)])
def test_draft_reduction_is_the_scale_pils_draft_takes(tmp_path, size):
    path = photo(tmp_path / "d.jpg", *size)
    for min_side in (40, 100, 200, 333, 900, 5000):
        image = Image.open(path)
        image.draft(image.mode, draft_size(*size, min_side))
        assert image.size == tuple(-(-side // draft_reduction(*size, min_side)) for side in size), min_side
