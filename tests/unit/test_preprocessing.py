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
    preprocess,
    resize_bilinear,
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
