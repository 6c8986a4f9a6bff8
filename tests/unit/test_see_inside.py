"""Seeing inside: layer features and Grad-CAM agree between PyTorch and Keras, the maps pass the
model-randomisation sanity check and localise objects at recorded positions, filters are drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.explain import gradcam, pearson, saliency, spearman, tap_names
from alexnet_lab.core.spec import get_arch

FEATURE_TOLERANCE = 1e-4  # of each layer's scale (max |value|)
MAP_CORRELATION = 0.99  # PyTorch vs Keras Grad-CAM, per image
RANDOMISED_RANK_CORRELATION = 0.5  # mean Spearman, trained vs top layers re-initialised: below this
LOCALISATION_SHARE = 0.6  # peaks inside the object's box, of the correct predictions


def _models(variant: str, seed: int = 0):
    import torch

    from alexnet_lab.frameworks import get_backend

    torch.manual_seed(seed)
    torch_backend, keras_backend = get_backend("torch"), get_backend("keras")
    model = torch_backend.build_model(variant, 10)
    keras_model = keras_backend.from_canonical(keras_backend.build_model(variant, 10), torch_backend.to_canonical(model))
    return model, keras_model


def _batch(size: int, count: int = 2) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(count, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("variant", ["cifar", "original"])
def test_every_layer_output_agrees_between_frameworks(variant):
    from alexnet_lab.frameworks import get_backend

    model, keras_model = _models(variant)
    batch, names = _batch(get_arch(variant).input_size), tap_names(get_arch(variant))
    ours = get_backend("torch").layer_outputs(model, batch, names)
    theirs = get_backend("keras").layer_outputs(keras_model, batch, names)
    for name in names:
        assert ours[name].shape == theirs[name].shape, name
        scale = np.abs(ours[name]).max()
        assert scale > 0, f"{name} is all zeros: the comparison would prove nothing"
        assert np.abs(ours[name] - theirs[name]).max() <= FEATURE_TOLERANCE * scale, name


@pytest.mark.parametrize("variant", ["cifar", "original"])
def test_gradcam_and_saliency_maps_agree_between_frameworks(variant):
    from alexnet_lab.frameworks import get_backend

    model, keras_model = _models(variant)
    batch = _batch(get_arch(variant).input_size)
    for layer, method in (("conv5", gradcam), ("input", None)):
        a = get_backend("torch").class_gradients(model, batch, layer, [3, 7])
        b = get_backend("keras").class_gradients(keras_model, batch, layer, [3, 7])
        maps_a = method(a[0], a[1]) if method else saliency(a[1])
        maps_b = method(b[0], b[1]) if method else saliency(b[1])
        assert maps_a.max() > 0, "all maps empty: the comparison would prove nothing"
        for x, y in zip(maps_a, maps_b):  # a map Grad-CAM's ReLU emptied must be empty in both
            assert (x.max() == 0 and y.max() == 0) or pearson(x, y) >= MAP_CORRELATION, layer


def test_unknown_layer_is_refused_with_a_close_match():
    from alexnet_lab.frameworks import get_backend

    model, _ = _models("cifar")
    with pytest.raises(UserInputError, match="conv5"):
        get_backend("torch").layer_outputs(model, _batch(32), ["conv55"])
    with pytest.raises(UserInputError, match="lrn1"):  # the cifar variant has no LRN
        get_backend("torch").layer_outputs(model, _batch(32), ["lrn1"])


def test_rank_correlation_and_gradcam_maths():
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 1000.0])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 1, 2.0]), np.array([1, 1, 2.0])) == pytest.approx(1.0)  # ties
    activations = np.zeros((1, 2, 2, 2), np.float32)
    activations[0, 0, 0, 0] = activations[0, 1, 1, 1] = 1
    gradients = np.stack([np.full((1, 2, 2), 1.0), np.full((1, 2, 2), -1.0)], -1).astype(np.float32)
    assert gradcam(activations, gradients)[0].tolist() == [[1, 0], [0, 0]]  # negative evidence is cut


def test_object_boxes_cover_the_drawn_object():
    from alexnet_lab.data.synthetic import SyntheticSpec, synthetic_object_box, synthetic_sample

    spec = SyntheticSpec(size=64, seed=3)
    for index in range(10):
        top, left, bottom, right = synthetic_object_box(spec, index)
        assert 0 <= top < bottom <= 64 and 0 <= left < right <= 64
        assert (bottom - top) * (right - left) < 0.8 * 64 * 64, "the box should not be the whole image"
        image = synthetic_sample(spec, index)[0].astype(float)
        inside = image[top:bottom, left:right].reshape(-1, 3)
        # the object's colour shows inside its box: the box holds pixels far from the corner's background
        assert np.abs(inside - image[0, 0]).sum(1).max() > 60


def test_filters_of_the_2012_network_show_its_two_towers_apart():
    from alexnet_lab.explain.draw import TOWER_GAP, filter_grid
    from alexnet_lab.frameworks import get_backend

    tensors = get_backend("torch").to_canonical(get_backend("torch").build_model("original", 10))
    picture = filter_grid(tensors, get_arch("original"), "conv1", zoom=1)
    white_columns = np.flatnonzero((picture == 255).all(axis=(0, 2)))
    runs = np.split(white_columns, np.flatnonzero(np.diff(white_columns) > 1) + 1)
    assert max(len(run) for run in runs) >= TOWER_GAP  # one wide gap between the 48 + 48 filters
    with pytest.raises(UserInputError, match="conv layer"):
        filter_grid(tensors, get_arch("original"), "fc6")


def test_features_command_writes_layers_and_paths(tmp_path, image_paths, torchvision_pth):
    from alexnet_lab.cli.main import main

    out = tmp_path / "f.npz"
    assert main(["features", *map(str, image_paths[:2]), "--weights", str(torchvision_pth), "--layer", "fc7",
                 "--layer", "pool5", "--pool", "avg", "--out", str(out)]) == 0
    found = np.load(out)
    assert found["fc7"].shape == (2, 4096) and found["pool5"].shape == (2, 256)
    assert list(found["paths"]) == [str(p) for p in image_paths[:2]]
    assert main(["features", str(image_paths[0]), "--weights", str(torchvision_pth), "--layer", "fc7",
                 "--layer", "fc6", "--out", str(tmp_path / "f.npy")]) == 2  # .npy holds one layer


# --- checks on a trained model (the trained_shapes_bundle fixture trains for about a minute) ---

def _shape_images(count: int = 120, seed: int = 7):
    from alexnet_lab.data.synthetic import SyntheticSpec, synthetic_object_box, synthetic_sample

    spec = SyntheticSpec(per_class=count // 10, seed=seed)
    images, labels = zip(*(synthetic_sample(spec, i) for i in range(spec.num_images)))
    boxes = [synthetic_object_box(spec, i) for i in range(spec.num_images)]
    return list(images), np.array(labels), boxes


@pytest.mark.slow
def test_trained_gradcam_agrees_between_frameworks(trained_shapes_bundle):
    from alexnet_lab.explain.maps import explain_images

    images = _shape_images(20)[0]
    ours = explain_images(trained_shapes_bundle, images, "torch", device="cpu")
    theirs = explain_images(trained_shapes_bundle, images, "keras", device="cpu")
    assert [e.class_index for e in ours] == [e.class_index for e in theirs]
    assert min(pearson(a.heat, b.heat) for a, b in zip(ours, theirs)) >= MAP_CORRELATION


@pytest.mark.slow
def test_maps_change_when_the_top_layers_are_reinitialised(trained_shapes_bundle):
    from alexnet_lab.explain.checks import randomised, rank_correlations
    from alexnet_lab.explain.maps import explain_images

    images, labels, _ = _shape_images(40)
    trained = explain_images(trained_shapes_bundle, images, "torch", target=None, device="cpu")
    same = explain_images(trained_shapes_bundle, images, "torch", device="cpu")
    assert rank_correlations(np.stack([e.heat for e in trained]), np.stack([e.heat for e in same])).min() > 0.999
    shuffled = randomised(trained_shapes_bundle)
    # the same classes explained, so only the weights differ
    other = [explain_images(shuffled, [im], "torch", target=e.class_index, device="cpu")[0]
             for im, e in zip(images, trained)]
    found = rank_correlations(np.stack([e.heat for e in trained]), np.stack([e.heat for e in other]))
    assert found.mean() < RANDOMISED_RANK_CORRELATION, f"mean rank correlation {found.mean():.3f}"


@pytest.mark.slow
def test_gradcam_peaks_fall_on_the_object(trained_shapes_bundle):
    from alexnet_lab.explain.checks import pointing_game
    from alexnet_lab.explain.maps import explain_images

    images, labels, boxes = _shape_images(200)
    found = explain_images(trained_shapes_bundle, images, "torch", device="cpu")
    correct = [i for i, e in enumerate(found) if e.class_index == labels[i]]
    assert len(correct) >= 0.3 * len(images), "the fixture model should be well above chance (10%)"
    result = pointing_game([found[i].peak for i in correct], [boxes[i] for i in correct], 32)
    print(json.dumps(result.__dict__))
    assert result.share >= LOCALISATION_SHARE and result.share >= result.chance + 0.2, result
