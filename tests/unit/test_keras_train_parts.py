"""The pieces of the Keras training loop: tf.data augmentation, input pipeline, loss,
initialisation, loss scaling and checkpoints (TensorFlow backend, nothing trained)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alexnet_lab.core.errors import WeightFormatError
from alexnet_lab.core.preprocessing import CIFAR_32 as CIFAR_PREPROCESS
from alexnet_lab.core.spec import get_arch
from alexnet_lab.data import AugmentSpec
from alexnet_lab.data.datasets import eval_view, normalisation

tf = pytest.importorskip("tensorflow")


def _image(size: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def _augment(image: np.ndarray, spec: AugmentSpec, crop: int, key: tuple[int, int]) -> np.ndarray:
    from alexnet_lab.train.keras.augment_tf import augment_image

    return augment_image(tf.constant(image), spec, crop, tf.constant(key, tf.int64)).numpy()


def test_identity_spec_crops_like_the_reference_and_flip_is_a_flip():
    image = _image()
    from alexnet_lab.train.keras.augment_tf import center_view

    assert np.array_equal(center_view(tf.constant(image), 32).numpy(), eval_view(image, 32))
    flips = [_augment(image, AugmentSpec(hflip=True), 40, (0, i)) for i in range(16)]
    assert all(np.array_equal(f, image) or np.array_equal(f, image[:, ::-1]) for f in flips)
    assert any(np.array_equal(f, image[:, ::-1]) for f in flips) and any(np.array_equal(f, image) for f in flips)


@pytest.mark.parametrize("size", [3, 4, 7, 8, 13])
@pytest.mark.parametrize("ratio", [(2.0, 3.0), (0.25, 0.5)])
def test_the_resized_crop_fallback_is_the_reference_box(size, ratio):
    """No draw fits (the whole area at an aspect ratio far from 1), so tf.data takes the fallback:
    the very box data.augment.fallback_crop_box centres (odd and even differences)."""
    from alexnet_lab.data.augment import fallback_crop_box

    image = _image(size, seed=size)
    top, left, box_h, box_w = fallback_crop_box(size, size, ratio)
    assert (box_h, box_w) != (size, size)
    expected = tf.image.resize(image[top : top + box_h, left : left + box_w].astype(np.float32), (6, 6),
                               method="bilinear", antialias=True)
    expected = np.clip(np.round(expected.numpy()), 0, 255).astype(np.uint8)
    spec = AugmentSpec(random_resized_crop=((1.0, 1.0), ratio))
    assert np.array_equal(_augment(image, spec, 6, (0, size)), expected)


@pytest.mark.parametrize("size", [32, 33, 34, 35])
def test_the_centre_view_is_the_reference_on_odd_and_even_differences(size):
    image = _image(size, seed=size)
    from alexnet_lab.train.keras.augment_tf import center_view

    assert np.array_equal(center_view(tf.constant(image), 32).numpy(), eval_view(image, 32))


def test_padded_crop_is_a_window_of_the_zero_padded_image():
    image = _image(32)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    for i in range(8):
        out = _augment(image, AugmentSpec(random_crop_padding=4), 32, (1, i))
        windows = [(t, left) for t in range(9) for left in range(9)
               if np.array_equal(padded[t : t + 32, left : left + 32], out)]
        assert windows, "not a window of the padded image"


def test_cutout_paints_a_clipped_square_in_the_mean_colour_like_the_reference():
    image = _image(32)
    mean = np.rint(image.reshape(-1, 3).mean(axis=0))
    sizes = set()
    for i in range(24):
        out = _augment(image, AugmentSpec(cutout=8), 32, (2, i))
        changed = (out != image).any(axis=2)
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        assert len(rows) <= 8 and len(cols) <= 8
        np.testing.assert_allclose(out[box].reshape(-1, 3), np.broadcast_to(mean, (len(rows) * len(cols), 3)), atol=1)
        outside = np.ones((32, 32), bool)
        outside[box] = False
        assert np.array_equal(out[outside], image[outside])
        sizes.add((len(rows), len(cols)))
    assert (8, 8) in sizes and len(sizes) > 1


def test_views_depend_only_on_the_seed_key():
    image = _image(48)
    spec = AugmentSpec(random_resized_crop=((0.08, 1.0), (3 / 4, 4 / 3)), hflip=True, color_jitter=0.4)
    first, again = _augment(image, spec, 32, (5, 3)), _augment(image, spec, 32, (5, 3))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, _augment(image, spec, 32, (6, 3)))


def test_store_larger_than_crop_gets_a_random_crop_of_it():
    image = _image(40)
    out = _augment(image, AugmentSpec(), 32, (0, 0))
    assert any(np.array_equal(image[t : t + 32, left : left + 32], out) for t in range(9) for left in range(9))


def test_tf_pipeline_matches_the_numpy_evaluation_input():
    from alexnet_lab.evaluate.dataset_eval import normalised_batch
    from alexnet_lab.train.keras.data import StorePipeline, epoch_order

    images = np.stack([_image(36, seed) for seed in range(10)])
    norm = normalisation(CIFAR_PREPROCESS)
    pipeline = StorePipeline(images, np.arange(10), 32, norm, AugmentSpec(hflip=True), seed=3)
    (x, y), = list(pipeline.batches(16))
    assert np.allclose(x.numpy(), normalised_batch(images, 32, norm), atol=1e-6) and list(y.numpy()) == list(range(10))
    order = epoch_order(10, 3, 1)
    (_, y_train), = list(pipeline.batches(16, epoch=1))
    assert list(y_train.numpy()) == list(order) and not np.array_equal(order, epoch_order(10, 3, 2))


def test_fixed_parallelism_gives_the_autotuned_pipelines_batches_with_the_autotuner_off():
    """autotune=False turns tf.data's autotuner off (its thread can hold up the end of an epoch);
    the augmented, shuffled batches are exactly those of the autotuned pipeline."""
    from alexnet_lab.train.keras.data import StorePipeline

    images = np.stack([_image(36, seed) for seed in range(40)])
    norm = normalisation(CIFAR_PREPROCESS)
    spec = AugmentSpec(random_crop_padding=4, hflip=True, color_jitter=0.2)
    fixed, tuned = (StorePipeline(images, np.arange(40) % 10, 32, norm, spec, seed=5, autotune=autotune)
                    for autotune in (False, True))
    assert fixed._tf_dataset(np.arange(40), 8, 0).options().autotune.enabled is False
    assert tuned._tf_dataset(np.arange(40), 8, 0).options().autotune.enabled is True
    for epoch in (None, 2):
        pairs = list(zip(fixed.batches(8, epoch), tuned.batches(8, epoch), strict=True))
        assert len(pairs) == 5
        for (x_fixed, y_fixed), (x_tuned, y_tuned) in pairs:
            assert np.array_equal(x_fixed.numpy(), x_tuned.numpy()) and np.array_equal(y_fixed.numpy(), y_tuned.numpy())


def test_label_smoothed_loss_is_pytorchs():
    from alexnet_lab.train.keras.steps import smoothed_cross_entropy

    logits = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 0])
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = np.mean(0.9 * -log_p[np.arange(6), labels] + 0.1 * -log_p.mean(1))
    assert math.isclose(float(smoothed_cross_entropy(logits, labels, 0.1)), expected, rel_tol=1e-5)


def test_torch_default_init_bounds():
    from alexnet_lab.frameworks.keras.initializers import torch_default_init

    spec = get_arch("cifar")
    tensors = torch_default_init(spec, 10, np.random.default_rng(0))
    assert {k: v.shape for k, v in tensors.items()} == spec.canonical_shapes(10)
    assert np.abs(tensors["conv1.weight"]).max() <= 1 / math.sqrt(3 * 5 * 5)
    assert np.abs(tensors["fc8.bias"]).max() <= 1 / math.sqrt(1024)
    assert np.all(tensors["bn1.weight"] == 1) and np.all(tensors["bn1.running_mean"] == 0)


def test_loss_scale_skips_overflows_and_grows():
    from alexnet_lab.train.keras.precision import LossScale

    scale = LossScale(True, growth_interval=2)
    assert scale.update(False) is False and scale.value == 2.0**14
    assert scale.update(True) and scale.update(True) and scale.value == 2.0**15
    off = LossScale(False)
    assert off.update(False) and off.value == 1.0


def test_checkpoint_round_trip_and_damaged_file(tmp_path):
    import keras

    from alexnet_lab.core.run_folder import RunFolder
    from alexnet_lab.frameworks.keras import build_model
    from alexnet_lab.train.keras.checkpoint import SUFFIX, Checkpoint, save_checkpoint

    model = build_model("cifar", 10, input_size=32)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    path = tmp_path / "checkpoints" / "last.keras-ckpt.npz"
    save_checkpoint(path, model, [optimizer], {"epoch": 2, "history": [{"epoch": 1}]})
    saved = [np.array(v.numpy()) for v in model.variables]
    for variable in model.trainable_variables:
        variable.assign(np.zeros(variable.shape, np.float32))
    checkpoint = Checkpoint(path)
    checkpoint.restore_model(model)
    checkpoint.restore_optimizers([optimizer])
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(saved, model.variables))
    assert checkpoint.state["epoch"] == 2 and checkpoint.state["history"] == [{"epoch": 1}]
    assert RunFolder(tmp_path).checkpoint("last", SUFFIX) == path  # where train.job looks on --resume
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightFormatError, match="cannot be read"):
        Checkpoint(path)


def test_fp16_step_with_overflowing_gradients_is_skipped():
    import keras

    from alexnet_lab.frameworks.keras import build_model
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.keras.precision import KerasPrecision, LossScale, dtype_policy
    from alexnet_lab.train.keras.steps import PhaseStep
    from alexnet_lab.train.phases import plan_phases

    with dtype_policy(KerasPrecision("fp16")):
        model = build_model("cifar", 10, 0.0, input_size=32)
    assert keras.config.dtype_policy().name == "float32", "the global policy must be restored"
    phase = plan_phases(RunConfig(variant="cifar"), get_arch("cifar"), ())[0]
    scale = LossScale(True, value=2.0**40)  # float16 gradients overflow at this scale
    step = PhaseStep(model, phase, RunConfig(variant="cifar"), scale)
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
    step.run(x, np.arange(4, dtype=np.int64))
    assert scale.value == 2.0**39 and int(step.optimizers[0].iterations.numpy()) == 0
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables))


def test_the_one_call_step_trains_like_the_two_call_step():
    """fp32 (no loss scale): the fused tf.function step and the gradients-then-update pair give the
    same weights after two steps with weight decay and label smoothing."""
    import keras

    from alexnet_lab.frameworks.keras import build_model
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.keras.precision import LossScale
    from alexnet_lab.train.keras.steps import PhaseStep
    from alexnet_lab.train.phases import plan_phases

    config = RunConfig(variant="cifar", weight_decay=5e-4, label_smoothing=0.1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 32, 32, 3)).astype(np.float32)
    y = np.arange(4, dtype=np.int64)
    weights, losses = [], []
    for fused in (True, False):
        keras.utils.set_random_seed(0)
        model = build_model("cifar", 10, 0.0, input_size=32)
        phase = plan_phases(config, get_arch("cifar"), ())[0]
        step = PhaseStep(model, phase, config, LossScale(False))
        assert step._fused is not None, "fp32 on TensorFlow takes the one-call step"
        if not fused:
            step._fused = None
        step.set_lr(1.0)
        losses.append([step.run(x, y)[0] for _ in range(2)])
        weights.append([v.numpy() for v in model.trainable_variables])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("nesterov", [True, False])
def test_fused_sgd_updates_like_keras_sgd(nesterov):
    """FusedSGD's one kernel per variable and Keras SGD's elementwise ops: the same weights and
    velocities, to float rounding, after steps whose learning rate changes (as a schedule does)."""
    import keras

    from alexnet_lab.train.keras.steps import FusedSGD

    rng = np.random.default_rng(0)
    shapes = [(3, 3, 3, 8), (8,), (40, 5)]
    start = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[tf.constant(rng.normal(size=s).astype(np.float32)) for s in shapes] for _ in range(4)]
    results = []
    for cls in (FusedSGD, keras.optimizers.SGD):
        variables = [keras.Variable(w) for w in start]
        optimizer = cls(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        optimizer.build(variables)
        for lr, step_grads in zip((0.1, 0.05, 0.2, 0.01), grads):
            optimizer.learning_rate = lr
            tf.function(lambda g: optimizer.apply(g, variables))(step_grads)  # noqa: B023
        results.append(([v.numpy() for v in variables], [m.numpy() for m in optimizer.momentums]))
    (fused, fused_m), (plain, plain_m) = results
    assert not all(np.array_equal(a, b) for a, b in zip(fused, start)), "the weights moved"
    for a, b in zip(fused + fused_m, plain + plain_m):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
