"""PreprocessSpec's numpy path against torchvision's own transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import (
    BVLC_CAFFE,
    TORCHVISION_IMAGENET,
    PreprocessSpec,
    center_crop,
    centred_offsets,
    crop_offsets,
    image_size_problem,
    preprocess,
    resize_bilinear,
    resize_geometry,
)
from tests.conftest import smooth_image

# torch computes source coordinates in float32, we in float64: differences stay below this
# many grey levels on the 0-255 scale.
RESIZE_TOL_255 = 0.02


@pytest.mark.parametrize("out_hw", [(256, 341), (100, 137), (600, 800), (31, 500), (256, 256)])
@pytest.mark.parametrize("antialias", [True, False])
def test_resize_matches_torchvision(out_hw, antialias):
    image = smooth_image(np.random.default_rng(0), 300, 400)
    ours = resize_bilinear(image, *out_hw, antialias=antialias)
    tensor = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    ref = F.resize(tensor, list(out_hw), antialias=antialias).permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() <= RESIZE_TOL_255


@pytest.mark.parametrize("hw", [(300, 400), (480, 320), (256, 256), (500, 333), (600, 450)])
def test_torchvision_pipeline_parity(hw):
    image = smooth_image(np.random.default_rng(1), *hw)
    reference = T.Compose([
        T.Resize(256, antialias=True),
        T.CenterCrop(224),
        T.Normalize(mean=[0.485 * 255, 0.456 * 255, 0.406 * 255], std=[0.229 * 255, 0.224 * 255, 0.225 * 255]),
    ])
    ref = reference(torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    ours = TORCHVISION_IMAGENET.apply(image)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
    # the resized pixels are rounded to uint8 (as PIL does, and the evaluation store must): half a level
    assert np.abs(ours - ref).max() < (0.5 + RESIZE_TOL_255) / 255 / 0.224


def test_pil_pipeline_agrees_to_uint8_rounding():
    """torchvision's usual PIL path rounds the resized image to uint8, and so do we."""
    from PIL import Image

    image = smooth_image(np.random.default_rng(2), 375, 500)
    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor(), T.ToDtype(torch.float32, scale=True),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ref = reference(Image.fromarray(image)).permute(1, 2, 0).numpy()
    ours = TORCHVISION_IMAGENET.apply(image)
    diff = np.abs(ours - ref)
    assert diff.max() < 1.01 / 255 / 0.224  # PIL's fixed-point rounding: at most one grey level
    assert (diff < 1e-5).mean() > 0.8  # and most pixels are identical


def test_center_crop_offsets_are_floor():
    grid = np.arange(256 * 256).reshape(256, 256, 1).repeat(3, axis=2)
    assert center_crop(grid, 224)[0, 0, 0] == grid[16, 16, 0]
    assert center_crop(grid, 227)[0, 0, 0] == grid[14, 14, 0]
    odd = np.zeros((227, 230, 3))
    assert center_crop(odd, 224).shape == (224, 224, 3)


@pytest.mark.parametrize("height, width, box_h, box_w, expected", [
    (256, 256, 224, 224, (16, 16)), (256, 256, 227, 227, (14, 14)),  # even and odd differences
    (7, 10, 4, 3, (1, 3)), (10, 7, 3, 4, (3, 1)),  # rectangular boxes: odd differences round down
    (1, 1, 1, 1, (0, 0)), (1, 9, 1, 4, (0, 2)), (9, 1, 4, 1, (2, 0)),  # 1x1 and 1xN
    (5, 8, 5, 8, (0, 0)),  # the box is the image
])
def test_centred_offsets_are_floor_of_half_the_difference(height, width, box_h, box_w, expected):
    assert centred_offsets(height, width, box_h, box_w) == expected


def test_centred_offsets_centre_every_box_that_fits():
    """On a grid of sizes: the margins before and after differ by at most the odd pixel, which
    goes after; a square crop is the square box."""
    for height in range(1, 8):
        for width in range(1, 8):
            for box_h in range(1, height + 1):
                for box_w in range(1, width + 1):
                    top, left = centred_offsets(height, width, box_h, box_w)
                    bottom, right = height - box_h - top, width - box_w - left
                    assert 0 <= top <= bottom <= top + 1 and 0 <= left <= right <= left + 1
            for crop in range(1, min(height, width) + 1):
                assert crop_offsets(height, width, crop) == centred_offsets(height, width, crop, crop)


@pytest.mark.parametrize("box", [(9, 4), (4, 9), (9, 9), (0, 4), (4, 0), (-1, 4)])
def test_a_box_that_does_not_fit_is_refused(box):
    with pytest.raises(ValueError, match=rf"cannot centre a {box[1]}x{box[0]} box in a 8x8 image"):
        centred_offsets(8, 8, *box)
    with pytest.raises(UserInputError, match="at most the image's"):
        crop_offsets(1, 5, 2)


def test_an_image_smaller_than_the_crop_is_named_by_the_guard_and_refused_by_the_geometry():
    spec = PreprocessSpec(resize_mode="none", crop=16, resize=16)
    assert "smaller than the 16x16 crop" in image_size_problem(10, 20, spec)
    with pytest.raises(UserInputError, match="cannot centre a 16x16 box in a 20x10 image"):
        resize_geometry(10, 20, spec)  # never negative offsets (numpy would wrap them round)


def test_caffe_preprocessing_by_hand():
    image = smooth_image(np.random.default_rng(3), 256, 256)  # already 256x256: no resize
    out = preprocess(image, BVLC_CAFFE)
    crop = image[14:241, 14:241].astype(np.float32)
    expected = crop[..., ::-1] - np.array([104.00699, 116.66877, 122.67891], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_spec_round_trip_and_describe():
    spec = PreprocessSpec.from_dict(BVLC_CAFFE.to_dict())
    assert spec == BVLC_CAFFE
    text = BVLC_CAFFE.describe()
    assert "256x256" in text and "center-crop 227" in text and "BGR" in text and "no std" in text
    assert "resize shorter side to 256" in TORCHVISION_IMAGENET.describe()


def test_bad_specs_and_images():
    with pytest.raises(UserInputError, match="channel order"):
        PreprocessSpec(channel_order="BRG")
    with pytest.raises(UserInputError, match="crop <= resize"):
        PreprocessSpec(resize=200, crop=224)
    with pytest.raises(UserInputError, match="HxWx3"):
        preprocess(np.zeros((10, 10), np.uint8), TORCHVISION_IMAGENET)
