"""AugmentSpec validation and the numpy reference augment(): deterministic given the rng."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data import CIFAR_AUGMENT, IMAGENET_AUGMENT, NO_AUGMENT, AugmentSpec, augment, augment_batch
from alexnet_lab.data.augment import fallback_crop_box, resized_crop_box

EVERYTHING = AugmentSpec(
    random_crop_padding=4, random_resized_crop=((0.3, 1.0), (0.75, 1.33)), hflip=True, color_jitter=0.4
)


def _image(height: int = 20, width: int = 24) -> np.ndarray:
    return np.random.default_rng(42).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_identity_spec_returns_an_equal_copy() -> None:
    image = _image()
    out = augment(image, NO_AUGMENT, np.random.default_rng(0))
    np.testing.assert_array_equal(out, image)
    assert out is not image and NO_AUGMENT.is_identity and not CIFAR_AUGMENT.is_identity


def test_same_rng_state_gives_the_same_result() -> None:
    image = _image()
    first = [augment(image, EVERYTHING, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    rng = np.random.default_rng(7)
    draws = [augment(image, EVERYTHING, rng) for _ in range(6)]
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])
    assert all(d.shape == image.shape and d.dtype == np.uint8 for d in draws)


def test_hflip_gives_the_image_or_its_mirror_both_seen() -> None:
    image = _image()
    rng = np.random.default_rng(0)
    outs = [augment(image, AugmentSpec(hflip=True), rng) for _ in range(40)]
    flipped = [np.array_equal(out, image[:, ::-1]) for out in outs]
    assert all(f or np.array_equal(out, image) for f, out in zip(flipped, outs))
    assert 5 < sum(flipped) < 35


def test_padded_crop_is_a_shifted_window_with_zero_fill() -> None:
    image = np.full((10, 10, 3), 200, dtype=np.uint8)
    image[5, 5] = (1, 2, 3)  # a marker to locate the shift
    spec = AugmentSpec(random_crop_padding=3)
    rng = np.random.default_rng(1)
    shifts = set()
    for _ in range(30):
        out = augment(image, spec, rng)
        row, col = np.argwhere((out == (1, 2, 3)).all(axis=2))[0]
        dy, dx = row - 5, col - 5
        assert abs(dy) <= 3 and abs(dx) <= 3
        zero_rows = int((out == 0).all(axis=(1, 2)).sum())
        zero_cols = int((out == 0).all(axis=(0, 2)).sum())
        assert (zero_rows, zero_cols) == (abs(dy), abs(dx))  # uncovered border is zero padding
        shifts.add((dy, dx))
    assert len(shifts) > 5


def test_random_resized_crop_box_stays_inside_and_in_range() -> None:
    rng = np.random.default_rng(3)
    crop = ((0.08, 1.0), (3 / 4, 4 / 3))
    for _ in range(200):
        top, left, height, width = resized_crop_box(60, 80, crop, rng)
        assert 0 <= top and top + height <= 60 and 0 <= left and left + width <= 80
        assert 0.08 * 4800 * 0.8 <= height * width <= 4800
    # an aspect ratio no box can have falls back to the widest central box of the nearest ratio
    assert resized_crop_box(60, 80, ((0.5, 0.5), (10.0, 20.0)), rng) == (26, 0, 8, 80)


@pytest.mark.parametrize("height, width, ratio, expected", [
    (60, 80, (10.0, 20.0), (26, 0, 8, 80)),  # wider than the range allows: full width, centred vertically
    (80, 60, (0.05, 0.1), (0, 26, 80, 8)),  # taller: full height, centred horizontally
    (60, 80, (0.5, 2.0), (0, 0, 60, 80)),  # inside the range: the whole image
    (7, 7, (2.0, 3.0), (1, 0, 4, 7)),  # an odd difference rounds the offset down
    (1, 1, (3 / 4, 4 / 3), (0, 0, 1, 1)),
    (1, 9, (3 / 4, 4 / 3), (0, 4, 1, 1)),  # 1xN strips
    (9, 1, (3 / 4, 4 / 3), (4, 0, 1, 1)),
])
def test_the_fallback_box_is_centred(height, width, ratio, expected) -> None:
    assert fallback_crop_box(height, width, ratio) == expected


def test_a_fallback_box_side_of_zero_is_refused() -> None:
    with pytest.raises(UserInputError, match="cannot centre a 0x1 box in a 9x1 image"):
        fallback_crop_box(1, 9, (0.1, 0.2))  # 1 * 0.2 rounds to a width of 0


def test_random_resized_crop_output_size() -> None:
    image = _image(30, 40)
    spec = AugmentSpec(random_resized_crop=((0.2, 1.0), (0.75, 1.33)))
    assert augment(image, spec, np.random.default_rng(0)).shape == (30, 40, 3)
    assert augment(image, spec, np.random.default_rng(0), size=(16, 16)).shape == (16, 16, 3)
    whole = AugmentSpec(random_resized_crop=((1.0, 1.0), (4 / 3, 4 / 3)))
    np.testing.assert_array_equal(augment(image, whole, np.random.default_rng(0)), image)


def test_color_jitter_keeps_grey_grey_and_changes_colour() -> None:
    grey = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8).reshape(8, 8, 1), 3, axis=2)
    spec = AugmentSpec(color_jitter=0.5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = augment(grey, spec, rng).astype(int)
        assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1
    colour = _image()
    outs = [augment(colour, spec, rng) for _ in range(5)]
    assert len({round(float(o.mean()), 1) for o in outs}) > 1


def test_batch_and_dict_round_trip() -> None:
    batch = np.stack([_image()] * 3)
    assert augment_batch(batch, CIFAR_AUGMENT, np.random.default_rng(0)).shape == batch.shape
    restored = AugmentSpec.from_dict(json.loads(json.dumps(IMAGENET_AUGMENT.to_dict())))
    assert restored == IMAGENET_AUGMENT


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"random_crop_padding": -1}, "random_crop_padding"),
        ({"random_crop_padding": 1.5}, "whole number"),
        ({"color_jitter": 1.0}, r"\[0, 1\)"),
        ({"random_resized_crop": (0.5, 1.0)}, "low, high"),
        ({"random_resized_crop": ((0.0, 1.0), (1.0, 1.0))}, "scale range"),
        ({"random_resized_crop": ((0.5, 1.0), (2.0, 1.0))}, "aspect-ratio"),
        ({"random_resized_crop": "big"}, "random_resized_crop"),
    ],
)
def test_bad_specs_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        AugmentSpec(**kwargs)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(UserInputError, match="HxWx3 uint8"):
        augment(_image().astype(np.float32), CIFAR_AUGMENT, np.random.default_rng(0))
    with pytest.raises(UserInputError, match="HxWx3 uint8"):
        augment(_image()[..., 0], CIFAR_AUGMENT, np.random.default_rng(0))
    with pytest.raises(UserInputError, match="numpy Generator"):
        augment(_image(), CIFAR_AUGMENT, 0)  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="size"):
        augment(_image(), IMAGENET_AUGMENT, np.random.default_rng(0), size=(0, 4))


def _cutout_region(image: np.ndarray, out: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels `out` changed; the rest must be untouched."""
    changed = np.argwhere((out != image).any(axis=2))
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0) + 1
    untouched = np.ones(image.shape[:2], bool)
    untouched[top:bottom, left:right] = False
    np.testing.assert_array_equal(out[untouched], image[untouched])
    return int(top), int(bottom), int(left), int(right)


def test_cutout_paints_one_clipped_square_in_the_mean_colour() -> None:
    image = _image(32, 32)
    spec = AugmentSpec(cutout=8)
    rng = np.random.default_rng(3)
    sizes = set()
    for _ in range(40):
        out = augment(image, spec, rng)
        top, bottom, left, right = _cutout_region(image, out)
        assert bottom - top <= 8 and right - left <= 8
        sizes.add((bottom - top, right - left))
        mean = np.rint(image.reshape(-1, 3).mean(axis=0))
        painted = out[top:bottom, left:right].reshape(-1, 3)
        np.testing.assert_allclose(painted, np.broadcast_to(mean, painted.shape))
    assert (8, 8) in sizes and any(h < 8 or w < 8 for h, w in sizes)  # whole squares, and squares clipped at an edge
    assert not spec.is_identity and AugmentSpec.from_dict({"hflip": True}).cutout == 0  # older configs: no cutout
    with pytest.raises(UserInputError, match="cutout"):
        AugmentSpec(cutout=-2)
