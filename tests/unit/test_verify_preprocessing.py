"""The `preprocessing` check of `alexnet verify W --images LABELLED_FOLDER`: it FAILs, naming the
better candidate, on a trained model whose metadata was given the wrong channel order."""

from __future__ import annotations

import pytest

from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
from alexnet_lab.verify.checks import FAIL, PASS
from alexnet_lab.verify.preprocessing import candidates, verdict


def test_candidates_are_the_usual_mistakes():
    found = candidates(TORCHVISION_IMAGENET, lambda crop: True)
    assert set(found) == {"bound", "channels BGR", "scale 0-255", "Caffe mean", "no mean/std", "resize square",
                          "crop 227"}  # ImageNet mean/std is the bound one here, so not a mistake
    assert found["channels BGR"].channel_order == "BGR" and found["scale 0-255"].scale == 1.0
    caffe = candidates(BVLC_CAFFE, lambda crop: crop == 227)
    assert "crop 224" not in caffe and caffe["ImageNet mean/std"].mean[0] == pytest.approx(0.406)  # B first
    assert caffe["resize shorter"].resize_mode == "shorter"


def test_verdict_needs_a_clear_margin():
    assert verdict({"bound": 0.80, "channels BGR": 0.82}, 500).status == PASS
    failed = verdict({"bound": 0.30, "channels BGR": 0.80, "no mean/std": 0.5}, 200)
    assert failed.status == FAIL and "'channels BGR'" in failed.detail
    assert verdict({"bound": 0.3, "channels BGR": 0.5}, 10).status == PASS  # 10 images: within the noise


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    from alexnet_lab.data.synthetic import SyntheticSpec, write_synthetic_folder

    return write_synthetic_folder(SyntheticSpec(per_class=20, seed=9), tmp_path_factory.mktemp("labelled"))


@pytest.mark.slow
def test_wrong_channel_order_in_the_metadata_fails(trained_shapes_bundle, labelled_folder, tmp_path):
    from dataclasses import replace

    from alexnet_lab.verify import VerifyOptions, run_verify
    from alexnet_lab.weights.files import save_weights

    wrong = trained_shapes_bundle.with_meta(preprocess=replace(trained_shapes_bundle.meta.preprocess,
                                                                channel_order="BGR"))
    options = VerifyOptions(images=str(labelled_folder), framework_parity=False)
    for bundle, expected in ((wrong, FAIL), (trained_shapes_bundle, PASS)):
        path = save_weights(bundle, tmp_path / f"{expected}.safetensors")
        check = next(c for c in run_verify(path, options).checks if c.name == "preprocessing")
        print(check.detail, check.figures)
        assert check.status == expected, check.detail
    assert check.figures["top1"]["bound"] > 0.3  # the fixture model is 3x chance or more
