"""keras.applications' contract on the Keras AlexNet, checked the way Keras' application tests
check a model: the module's functions, construction variants and shapes, both image data
formats, any channel count without weights, `.keras` round trips in a fresh process that never
imports alexnet_lab, clone_model, preprocess_input / decode_predictions, the minimum input size,
and a head swap then one training step.

Small models keep it fast: the cifar variant, and specs with a narrow classifier where the LRN
and adaptive-pool blocks must be exercised.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
from alexnet_lab.core.spec import ORIGINAL
from alexnet_lab.frameworks.keras import (
    AlexNet,
    AlexNetCifar,
    AlexNetOriginal,
    build_model,
    decode_predictions,
    model_variant,
    preprocess_input,
    to_canonical,
)
from tests.conftest import REPO

APPLICATION_ARGS = ["include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                    "classifier_activation", "name"]


@pytest.fixture()
def channels_first():
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format("channels_last")


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def test_module_contract_matches_keras_applications():
    assert list(inspect.signature(AlexNet).parameters)[:8] == APPLICATION_ARGS
    assert list(inspect.signature(keras.applications.VGG16).parameters)[:8] == APPLICATION_ARGS
    assert AlexNetOriginal(weights=None, include_top=False).get_layer("conv2").groups == 2
    assert callable(preprocess_input) and callable(decode_predictions)
    assert build_model("cifar", 10, input_size=32, in_chans=1).input_shape == (None, 32, 32, 1)  # as the torch adapter


@pytest.mark.parametrize("kwargs, out_shape", [
    ({}, (None, 10)),
    ({"include_top": False}, (None, 4, 4, 192)),
    ({"include_top": False, "pooling": "avg"}, (None, 192)),
    ({"include_top": False, "pooling": "max", "input_shape": (None, None, 1)}, (None, 192)),
    ({"include_top": False, "input_shape": (64, 48, 5)}, (None, 8, 6, 192)),
    ({"classes": 3, "classifier_activation": None, "input_shape": (32, 32, 2)}, (None, 3)),
])
def test_construction_variants(kwargs, out_shape):
    model = AlexNetCifar(**kwargs)
    assert model.output_shape == out_shape and model_variant(model) == "cifar"
    shape = tuple(d or 40 for d in model.input_shape[1:])
    out = model.predict(_images((2, *shape)), verbose=0)
    assert out.shape[0] == 2 and out.shape[-1] == out_shape[-1] and np.isfinite(out).all()


def test_channels_first_same_network_same_weights(channels_first):
    first = AlexNetCifar(include_top=False, input_shape=(3, 32, 32))
    top = AlexNetCifar(input_shape=(3, 32, 32), classifier_activation=None)
    keras.config.set_image_data_format("channels_last")
    last = AlexNetCifar(include_top=False)
    last_top = AlexNetCifar(classifier_activation=None)
    last.set_weights(first.get_weights())
    last_top.set_weights(top.get_weights())
    x = _images((2, 32, 32, 3))
    assert first.output_shape == (None, 192, 4, 4)
    np.testing.assert_allclose(np.asarray(first(x.transpose(0, 3, 1, 2))), np.asarray(last(x)).transpose(0, 3, 1, 2),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(top(x.transpose(0, 3, 1, 2))), np.asarray(last_top(x)), rtol=1e-5, atol=1e-5)


def test_adapter_builder_stays_nhwc_under_channels_first(channels_first):
    """predict, training, int8 and export feed NHWC batches: the adapter's build_model ignores a
    global channels_first (set in keras.json, say) and leaves the global setting as it found it."""
    model = build_model("cifar", 10)
    assert model.input_shape == (None, 32, 32, 3) and keras.config.image_data_format() == "channels_first"


def test_input_shape_errors_say_what_to_do():
    with pytest.raises(UserInputError, match="looks channels_first.*set_image_data_format"):
        AlexNet(input_shape=(3, 224, 224))
    with pytest.raises(UserInputError, match="pretrained weights need 3 input channels"):
        AlexNet(weights="imagenet", input_shape=(224, 224, 1))
    with pytest.raises(UserInputError, match="too small .* expected at least 8x8"):
        AlexNetCifar(include_top=False, input_shape=(7, 32, 3))
    with pytest.raises(UserInputError, match="include_top=True needs a fixed input size"):
        AlexNetCifar(input_shape=(None, None, 3))


def test_variable_size_model_refuses_too_small_batches_before_the_backend():
    model = AlexNet(include_top=False, input_shape=(None, None, 3))  # owt, as in the bug report
    assert model.predict(_images((1, 200, 300, 3)), verbose=0).shape == (1, 5, 8, 256)
    for call in (lambda x: model.predict(x, verbose=0), model.predict_on_batch, model):
        with pytest.raises(UserInputError, match="input 40x40 is too small for AlexNet 'owt': expected at least 63x63"):
            call(_images((1, 40, 40, 3)))


def _small_lrn_model(**kwargs):
    """The 2012 feature part (LRN, grouped convs) with a narrow classifier behind an adaptive pool."""
    spec = dataclasses.replace(ORIGINAL, hidden=32, adaptive_pool=True)
    return AlexNet(variant=spec, input_shape=(99, 99, 3), classes=5, **kwargs)


def test_keras_file_loads_in_a_fresh_process_without_alexnet_lab(tmp_path):
    lrn_model, cifar = _small_lrn_model(), AlexNetCifar()
    x99, x32 = _images((2, 99, 99, 3)), _images((2, 32, 32, 3), seed=1)
    for name, model, x in (("lrn", lrn_model, x99), ("cifar", cifar, x32)):
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.asarray(model(x)))
    code = (
        "import sys, keras, numpy as np\n"
        "for name in ('lrn', 'cifar'):\n"
        "    m = keras.saving.load_model(sys.argv[1] + f'/{name}.keras')\n"
        "    y = np.asarray(m(np.load(sys.argv[1] + f'/{name}_x.npy')))\n"
        "    assert np.abs(y - np.load(sys.argv[1] + f'/{name}_y.npy')).max() < 1e-6, name\n"
        "    print(name, [l.name for l in m.layers if l.name in ('lrn1', 'avgpool', 'fc8')])\n"
        "assert 'alexnet_lab' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}  # installed, never imported
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lrn ['lrn1', 'avgpool', 'fc8']" in proc.stdout and "cifar ['fc8']" in proc.stdout
    loaded = keras.saving.load_model(tmp_path / "cifar.keras")  # variant recovered from the layers
    assert model_variant(loaded) == "cifar"
    expected = to_canonical(cifar)
    assert all(np.array_equal(v, expected[k]) for k, v in to_canonical(loaded).items())


def test_clone_model_keeps_variant_and_weights():
    model = AlexNetCifar(classifier_activation=None)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    assert model_variant(clone) == "cifar" and sorted(to_canonical(clone)) == sorted(to_canonical(model))
    x = _images((2, 32, 32, 3))
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(model(x)))


def test_preprocess_input_follows_the_weights_on_batches_tensors_and_layouts():
    batch = _images((2, 8, 8, 3))
    torchvision = preprocess_input(batch)  # 'imagenet': [0, 1], mean / std
    np.testing.assert_allclose(torchvision, (batch / 255 - TORCHVISION_IMAGENET.mean) / TORCHVISION_IMAGENET.std,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preprocess_input(batch, weights="bvlc"), batch[..., ::-1] - BVLC_CAFFE.mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(preprocess_input(batch[0]), torchvision[0])
    np.testing.assert_array_equal(preprocess_input(batch.transpose(0, 3, 1, 2), data_format="channels_first"),
                                  torchvision.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocess_input(keras.ops.convert_to_tensor(batch))),
                               torchvision, rtol=1e-5, atol=1e-6)
    assert TORCHVISION_IMAGENET.apply(batch.astype(np.uint8)).shape == (2, 224, 224, 3)  # apply takes a batch


def test_decode_predictions():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, 281], preds[0, 282], preds[1, 1] = 0.7, 0.2, 0.9
    decoded = decode_predictions(preds, top=2)
    # keras.applications' (WordNet ID, name, score)
    assert decoded[0] == [("n02123045", "tabby", pytest.approx(0.7)), ("n02123159", "tiger cat", pytest.approx(0.2))]
    assert decoded[1][0][:2] == ("n01443537", "goldfish")
    with pytest.raises(UserInputError, match="shape \\(samples, 1000\\)"):
        decode_predictions(np.zeros((2, 10)))


def test_head_swap_then_one_training_step():
    base = AlexNetCifar(classifier_activation=None)
    base.trainable = False
    head = keras.layers.Dense(3, name="new_fc8")(base.get_layer("fc7").output)
    model = keras.Model(base.input, head)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    conv1 = base.get_layer("conv1").get_weights()[0].copy()
    before = model.get_layer("new_fc8").get_weights()[0].copy()
    loss = model.train_on_batch(_images((4, 32, 32, 3)) / 255, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    assert np.array_equal(base.get_layer("conv1").get_weights()[0], conv1)
    assert not np.array_equal(model.get_layer("new_fc8").get_weights()[0], before)


def test_archives_with_the_registered_layers_of_older_versions_still_load(tmp_path, monkeypatch):
    from alexnet_lab.frameworks.keras import blocks
    from alexnet_lab.frameworks.keras import layers as registered

    new = _small_lrn_model(classifier_activation=None)
    monkeypatch.setattr(blocks, "lrn", lambda x, spec, name: registered.LocalResponseNormalization(
        spec.size, spec.alpha, spec.beta, spec.k, name=name)(x))
    monkeypatch.setattr(blocks, "adaptive_avgpool", lambda x, size, name: registered.AdaptiveAveragePooling2D(size, name=name)(x))
    old = _small_lrn_model(classifier_activation=None)  # built as before: our registered classes
    monkeypatch.undo()
    assert isinstance(old.get_layer("lrn1"), registered.LocalResponseNormalization)
    old.set_weights(new.get_weights())
    old.save(tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras")  # alexnet_lab imported: the names resolve
    x = _images((2, 99, 99, 3))
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(old(x)))
    np.testing.assert_allclose(np.asarray(new(x)), np.asarray(old(x)), rtol=1e-6, atol=1e-6)  # same arithmetic
