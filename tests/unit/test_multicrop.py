"""`alexnet evaluate --crops 1|5|10`: the views are the centre, the corners and their mirror
images, and the softmax outputs are averaged, in both frameworks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.evaluate.dataset_eval import crop_views


def test_crop_views_are_centre_corners_and_flips():
    image = np.arange(6 * 6 * 3, dtype=np.uint8).reshape(6, 6, 3)
    (centre,) = crop_views(image, 4, 1)
    assert np.array_equal(centre, image[1:5, 1:5])
    five = crop_views(image, 4, 5)
    assert [v[0, 0, 0] for v in five] == [image[0, 0, 0], image[0, 2, 0], image[2, 0, 0], image[2, 2, 0], image[1, 1, 0]]
    ten = crop_views(image, 4, 10)
    assert len(ten) == 10 and all(np.array_equal(f, v[:, ::-1]) for v, f in zip(ten[:5], ten[5:]))
    with pytest.raises(UserInputError, match="--crops"):
        crop_views(image, 4, 3)


@pytest.fixture(scope="module")
def small_bundle():
    import torch

    from alexnet_lab.core.bundle import ModelMeta, WeightBundle
    from alexnet_lab.core.preprocessing import PreprocessSpec
    from alexnet_lab.frameworks import get_backend

    torch.manual_seed(0)
    tensors = get_backend("torch").to_canonical(get_backend("torch").build_model("cifar", 10))
    spec = PreprocessSpec(resize=40, resize_mode="square", crop=32, name="test-40-32")  # room for corner crops
    from alexnet_lab.data.synthetic import synthetic_class_names

    return WeightBundle(tensors, ModelMeta("cifar", synthetic_class_names(10), spec))


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_ten_crop_averages_the_softmax_of_every_view(small_bundle, framework):
    from alexnet_lab.core.softmax import softmax
    from alexnet_lab.evaluate.dataset_eval import logits_for_store, network_input
    from alexnet_lab.inference.predict import inference_model

    images = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    found = logits_for_store(small_bundle, images, framework, device="cpu", crops=10)
    logits_of = inference_model(small_bundle, framework, "cpu")
    expected = np.mean([softmax(logits_of(network_input(small_bundle, images, v, 10), 8)) for v in range(10)], axis=0)
    assert np.allclose(softmax(found), expected, atol=1e-5)
    single = softmax(logits_for_store(small_bundle, images, framework, device="cpu", crops=1))
    assert not np.allclose(single, expected, atol=1e-4), "ten views should differ from the centre alone"


def test_evaluate_command_reports_the_crops(tmp_path, small_bundle, capsys):
    from alexnet_lab.cli.main import main
    from alexnet_lab.data.synthetic import SyntheticSpec, write_synthetic_folder
    from alexnet_lab.weights.files import save_weights

    weights = save_weights(small_bundle, tmp_path / "w.safetensors")
    folder = write_synthetic_folder(SyntheticSpec(per_class=2, seed=4), tmp_path / "data")
    assert main(["evaluate", str(weights), "--data", str(folder), "--crops", "5", "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["crops"] == 5 and report["num_images"] == 20


def test_two_views_are_the_centre_and_its_mirror_averaged_like_the_others():
    from alexnet_lab.evaluate.dataset_eval import average_views

    image = np.arange(6 * 6 * 3, dtype=np.uint8).reshape(6, 6, 3)
    centre, mirror = crop_views(image, 4, 2)
    assert np.array_equal(centre, image[1:5, 1:5]) and np.array_equal(mirror, image[1:5, 1:5][:, ::-1])
    a, b = np.array([[2.0, 0.0, -1.0]]), np.array([[0.0, 1.0, 0.0]])
    probs = np.exp(average_views([a, b]))
    expected = (np.exp(a) / np.exp(a).sum() + np.exp(b) / np.exp(b).sum()) / 2
    assert np.allclose(probs, expected) and np.isclose(probs.sum(), 1.0)
