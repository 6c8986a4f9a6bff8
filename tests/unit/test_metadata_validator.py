"""One metadata validator on every load (issue #27 c): random preprocessing and class lists written
into real weight files either load into a bundle whose predictions are finite, or are refused with
one typed, one-line error naming the field; never another exception, never NaN probabilities."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import AlexnetLabError, UserInputError, WeightFormatError
from alexnet_lab.core.fingerprint import reference_logits
from alexnet_lab.core.metadata import MAX_SIDE, MIN_SIDE, MetadataError
from alexnet_lab.core.preprocessing import PreprocessSpec, preprocess
from alexnet_lab.core.spec import get_arch
from alexnet_lab.weights.files import load_weights, save_weights
from alexnet_lab.weights.formats.safetensors_io import write_safetensors

NUM_CLASSES = 4
SPEC = PreprocessSpec(resize=36, resize_mode="square", crop=32, name="cifar-ish")

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 300), st.just(0.0),
                    st.text(max_size=3), st.none())
triples = st.one_of(st.lists(numbers, min_size=0, max_size=4), st.lists(st.floats(0.01, 300), min_size=3, max_size=3),
                    numbers)
sides = st.one_of(st.integers(-5, 5000), st.sampled_from([MIN_SIDE, 32, 36, 256, MAX_SIDE]), st.floats(), st.text(max_size=3))
names = st.lists(st.sampled_from(["cat", "dog", "owl", "", " ", "emu"]), min_size=NUM_CLASSES, max_size=NUM_CLASSES)
classes = st.one_of(names, st.lists(st.text(max_size=4), max_size=6), st.just("cats"), st.integers())


@st.composite
def metadata(draw) -> dict:
    """A preprocessing dict and a class list, each field good or hostile."""
    spec = SPEC.to_dict()
    for key, values in (("mean", triples), ("std", st.one_of(st.none(), triples)), ("scale", numbers),
                        ("resize", sides), ("crop", sides),
                        ("resize_mode", st.sampled_from(["square", "shorter", "none", "sideways"]))):
        if draw(st.booleans()):
            spec[key] = draw(values)
    categories = draw(classes) if draw(st.booleans()) else [f"c{i}" for i in range(NUM_CLASSES)]
    return {"preprocess": spec, "categories": categories}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    shapes = get_arch("cifar").canonical_shapes(NUM_CLASSES)
    tensors = {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
    tensors.update({k: np.ones(s, np.float32) for k, s in shapes.items() if k.endswith("running_var")})
    meta = ModelMeta("cifar", tuple(f"c{i}" for i in range(NUM_CLASSES)), SPEC, source="unit-test")
    return write_safetensors(WeightBundle(tensors, meta), tmp_path_factory.mktemp("meta") / "good.safetensors",
                             records=False)


def rewrite_metadata(source: Path, target: Path, preprocess_dict, categories) -> Path:
    """A copy of a .safetensors file whose header metadata says what the caller wants (unvalidated)."""
    data = source.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"]["preprocess"] = json.dumps(preprocess_dict)
    header["__metadata__"]["categories"] = json.dumps(categories)
    raw = json.dumps(header).encode()
    target.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])
    return target


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(found=metadata())
def test_a_file_loads_sane_or_is_refused_in_one_line(good_file, tmp_path, found):
    path = rewrite_metadata(good_file, tmp_path / "w.safetensors", found["preprocess"], found["categories"])
    try:
        bundle = load_weights(path)
    except (MetadataError, WeightFormatError) as exc:
        message = str(exc)
        assert "\n" not in message and "Traceback" not in message
        return
    spec = bundle.meta.preprocess
    assert len(set(bundle.meta.categories)) == NUM_CLASSES and all(n.strip() for n in bundle.meta.categories)
    assert MIN_SIDE <= spec.crop <= MAX_SIDE and (spec.resize_mode == "none" or spec.crop <= spec.resize)
    assert all(math.isfinite(v) for v in (*spec.mean, spec.scale, *(spec.std or ())))
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    if spec.resize_mode == "none" and min(image.shape[:2]) < spec.crop:
        return  # the image guard's business (test_image_guard), not the metadata's
    batch = preprocess(image, spec)[None]
    assert np.isfinite(batch).all()
    if spec.crop == 32:  # the cifar network's input size: run it
        assert np.isfinite(_softmax(reference_logits(bundle.tensors, bundle.arch, batch))).all()


@pytest.mark.parametrize("field, value, words", [
    ("mean", [0.5, 0.5], "'mean' must be 3 finite numbers"),
    ("std", [0.2, 0.0, 0.2], "'std' must be 3 finite numbers > 0"),
    ("scale", float("nan"), "'scale' must be a finite number > 0"),
    ("resize", 10**7, "'resize' must be a whole number of pixels in 8..1024"),
    ("crop", 48, "crop <= resize"),
])
def test_each_insane_field_is_named(good_file, tmp_path, field, value, words):
    spec = {**SPEC.to_dict(), field: value}
    path = rewrite_metadata(good_file, tmp_path / "w.safetensors", spec, [f"c{i}" for i in range(NUM_CLASSES)])
    with pytest.raises(MetadataError, match=words) as caught:
        load_weights(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("categories, words", [
    (["cat", "dog", "cat", "owl"], "names 'cat' twice"),
    (["cat", "", "dog", "owl"], "empty or non-text class name at index 1"),
    (["cat", "dog"], "fc8's rows"),
])
def test_class_names_are_unique_non_empty_and_match_fc8(good_file, tmp_path, categories, words):
    path = rewrite_metadata(good_file, tmp_path / "w.safetensors", SPEC.to_dict(), categories)
    with pytest.raises(MetadataError, match=words):
        load_weights(path)


@pytest.mark.parametrize("suffix", [".pth", ".weights.h5"])
def test_every_format_runs_the_validator(good_file, tmp_path, suffix):
    """The framework formats parse their metadata with ModelMeta.from_metadata, the validator's home."""
    bundle = load_weights(good_file)
    out = save_weights(bundle, tmp_path / f"w{suffix}")
    if suffix == ".pth":
        import torch

        state = torch.load(out, weights_only=True)
        meta = dict(json.loads(state._metadata[""]["alexnet_lab"]))
        spec = json.loads(meta["preprocess"])
        meta["preprocess"] = json.dumps({**spec, "std": [0.2, 0.0, 0.2]})
        state._metadata[""]["alexnet_lab"] = json.dumps(meta)
        torch.save(state, out)
        with pytest.raises(MetadataError, match="'std'"):
            load_weights(out)
    else:
        assert load_weights(out).meta == bundle.meta


def test_specs_built_in_code_are_refused_as_user_input():
    with pytest.raises(UserInputError, match="'std'"):
        PreprocessSpec(std=(0.2, 0.0, 0.2))
    with pytest.raises(AlexnetLabError, match="'categories' names 'a' twice"):
        ModelMeta("cifar", ("a", "a"), SPEC)
