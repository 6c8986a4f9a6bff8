"""One image geometry: the same file gives bit-identical float32 network input in predict, evaluate,
train's validation view and explain, over many odd aspect ratios (issue #27 b).

predict, explain and serve feed core.preprocessing.preprocess; evaluate and training's validation
feed the uint8 store (data.datasets.stored_view) through eval_view and the folded normalisation.
Both ask resize_geometry for the resized size and the crop, and round the resize to uint8 once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from alexnet_lab.core.preprocessing import (
    BVLC_CAFFE,
    MAX_ASPECT_RATIO,
    TORCHVISION_IMAGENET,
    PreprocessSpec,
    normalize,
    preprocess,
    resize_geometry,
)
from alexnet_lab.data.datasets import decode_all, normalisation
from alexnet_lab.data.index import DatasetIndex, Sample
from alexnet_lab.data.stream import StreamedImages
from alexnet_lab.evaluate.dataset_eval import normalised_batch
from alexnet_lab.explain.maps import cropped_view
from alexnet_lab.train.torch.data import Normaliser, StoreDataset

# an odd resize - crop difference (the square's inset and the crop's offset round differently)
ODD = PreprocessSpec(resize=64, crop=41, name="odd-64-41")
NONE = PreprocessSpec(resize=40, resize_mode="none", crop=24, name="none-24")
SPECS = [TORCHVISION_IMAGENET, BVLC_CAFFE, ODD, NONE]


@st.composite
def shapes(draw):
    """(height, width) of any aspect the image guard lets through, 1xN-ish strips included."""
    short = draw(st.integers(1, 90))
    ratio = draw(st.floats(1.0, float(MAX_ASPECT_RATIO)))
    long = max(short, min(int(short * ratio), 2000))
    return (short, long) if draw(st.booleans()) else (long, short)


def _inputs(path: Path, spec: PreprocessSpec) -> dict[str, np.ndarray]:
    """The float32 network input of one file, as each command builds it."""
    from alexnet_lab.data.images import read_image_rgb

    pixels = read_image_rgb(path)
    index = DatasetIndex([Sample(str(path), 0)], ("a",))
    store, _, bad = decode_all(index, spec)
    assert not bad
    streamed = StreamedImages([str(path)], spec, decoder="pil")[0:1] if spec.resize_mode != "none" else store
    norm = normalisation(spec)
    view = StoreDataset(store, np.zeros(1, np.int64), spec.crop, augment=None)[0][0]
    trained = Normaliser(*norm, torch.device("cpu"), channels_last=False)(view[None])
    return {
        "predict": preprocess(pixels, spec),  # inference.predict, serve, explain's network input
        "explain-view": normalize(cropped_view(pixels, spec), spec),
        "evaluate": normalised_batch(store, spec.crop, norm)[0],
        "evaluate-stream": normalised_batch(streamed, spec.crop, norm)[0],
        "train-val": trained[0].permute(1, 2, 0).numpy(),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hw=shapes(), spec_index=st.integers(0, len(SPECS) - 1), seed=st.integers(0, 2**16))
def test_same_file_same_network_input(hw, spec_index, seed):
    spec = SPECS[spec_index]
    if spec.resize_mode == "none" and min(hw) < spec.crop:
        hw = (max(hw[0], spec.crop), max(hw[1], spec.crop))
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.png"
        Image.fromarray(image).save(path)
        found = _inputs(path, spec)
    reference = found.pop("predict")
    assert reference.shape == (spec.crop, spec.crop, 3) and reference.dtype == np.float32
    for name, array in found.items():
        assert array.dtype == np.float32, name
        assert np.array_equal(array, reference), f"{name} differs from predict for a {hw} image with {spec.name}"


def test_the_two_roundings_of_issue_27_now_agree():
    """Heights and widths where int(256 * w / h) and int(w * (256 / h)) differed by one pixel."""
    found = [(h, w) for h in range(1, 200) for w in range(h, h * 4)
             if int(256 * w / h) != int(w * (256 / h))]
    assert found  # the old stored_view rounding really differed for some shapes
    for h, w in found[:50]:
        resized_h, resized_w, _, _ = resize_geometry(h, w, TORCHVISION_IMAGENET)
        assert (resized_h, resized_w) == (256, int(256 * w / h))
