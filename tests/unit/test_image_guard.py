"""One image guard before any resize (issue #27 a): real files of random sizes (1xN strips
included), pixel modes and corruptions either decode into an HxWx3 uint8 array within the budget
and the aspect bound, or are refused with ImageReadError, never another exception; and refusing
or resizing an extreme strip takes bounded memory."""

from __future__ import annotations

import io
import os
import tracemalloc
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from alexnet_lab.core.preprocessing import (
    BVLC_CAFFE,
    MAX_ASPECT_RATIO,
    TORCHVISION_IMAGENET,
    ImageReadError,
    PreprocessSpec,
    image_size_problem,
    preprocess,
)
from alexnet_lab.data.images import MAX_PIXELS_ENV, read_image_rgb

BUDGET = 60_000  # a small decoding budget, so the property meets it too
MODES = ["RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", "1"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif"}


def _picture(rng: np.random.Generator, height: int, width: int, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return image.convert(mode)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    try:
        image.save(out, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot hold: save it as RGB
        out = io.BytesIO()
        image.convert("RGB").save(out, format=fmt)
    return out.getvalue()


def _corrupted(data: bytes, how: str, rng: np.random.Generator) -> bytes:
    if how == "truncate":
        return data[: int(rng.integers(1, len(data)))]
    if how == "flip":
        raw = bytearray(data)
        for position in rng.integers(0, len(raw), size=int(rng.integers(1, 6))):
            raw[position] ^= int(rng.integers(1, 256))
        return bytes(raw)
    return data


@st.composite
def image_files(draw):
    short = draw(st.integers(1, 40))
    long = draw(st.integers(short, min(3000, short * 80)))
    hw = (short, long) if draw(st.booleans()) else (long, short)
    return (hw, draw(st.sampled_from(MODES)), draw(st.sampled_from(sorted(FORMATS))),
            draw(st.sampled_from(["none", "none", "truncate", "flip"])), draw(st.integers(0, 2**16)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=image_files())
def test_reader_returns_rgb_within_the_guard_or_one_typed_error(tmp_path, case):
    (height, width), mode, fmt, corruption, seed = case
    rng = np.random.default_rng(seed)
    data = _corrupted(_encoded(_picture(rng, height, width, mode), fmt), corruption, rng)
    path = tmp_path / f"picture{FORMATS[fmt]}"
    path.write_bytes(data)
    spec = TORCHVISION_IMAGENET if seed % 2 else BVLC_CAFFE
    with mock.patch.dict(os.environ, {MAX_PIXELS_ENV: str(BUDGET)}):
        try:
            pixels = read_image_rgb(path, spec=spec)
        except ImageReadError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            return
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8
    h, w = pixels.shape[:2]
    assert h * w <= BUDGET and max(h, w) <= MAX_ASPECT_RATIO * min(h, w)
    out = preprocess(pixels, spec)
    assert out.shape == (spec.crop, spec.crop, 3) and np.isfinite(out).all()


def _peak(call) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            result = call()
        except ImageReadError as exc:
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("hw", [(1, 3000), (3000, 1)])
def test_a_strip_is_refused_before_any_resize_in_bounded_memory(tmp_path, hw):
    """A 1x3000 PNG (about a hundred bytes) once became a 256 x 768000 resize with a filter matrix
    of gigabytes; now the guard refuses it from the header, and so does preprocess on the array."""
    path = tmp_path / "strip.png"
    Image.fromarray(np.full((*hw, 3), 200, np.uint8)).save(path)
    peak, result = _peak(lambda: read_image_rgb(path))
    assert isinstance(result, ImageReadError) and "aspect ratio of 3000:1" in str(result)
    assert peak < 2_000_000
    peak, result = _peak(lambda: preprocess(np.full((*hw, 3), 200, np.uint8), TORCHVISION_IMAGENET))
    assert isinstance(result, ImageReadError)
    assert peak < 2_000_000


@pytest.mark.parametrize("hw", [(8, 256), (60, 1920), (1920, 60)])
def test_the_most_elongated_image_allowed_resizes_in_bounded_memory(hw):
    """At the aspect bound the resize is 256 x 8192: the banded filter keeps memory to a few
    copies of that output (a dense one was out x in: 8192 x 1920 float64 per temporary)."""
    image = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    peak, result = _peak(lambda: preprocess(image, TORCHVISION_IMAGENET))
    assert isinstance(result, np.ndarray) and result.shape == (224, 224, 3)
    assert peak < 128_000_000


@pytest.mark.parametrize("hw, spec, words", [
    ((0, 5), None, "no pixels"),
    ((10_001, 10_000), None, "pixel budget"),
    ((10, 321), None, "aspect ratio of 32:1"),
    ((10, 320), TORCHVISION_IMAGENET, None),
    ((10, 20), PreprocessSpec(resize_mode="none", crop=16, resize=16), "smaller than the 16x16 crop"),
])
def test_image_size_problem_names_the_size(hw, spec, words):
    problem = image_size_problem(*hw, spec)
    assert problem is None if words is None else (words in problem and f"{hw[1]}x{hw[0]}" in problem)


def test_serve_refuses_a_strip_before_decoding():
    from alexnet_lab.serve.uploads import UploadError, decode_upload

    out = io.BytesIO()
    Image.fromarray(np.zeros((1, 3000, 3), np.uint8)).save(out, format="PNG")
    with pytest.raises(UploadError, match="aspect ratio") as caught:
        decode_upload(out.getvalue(), "strip.png")
    assert caught.value.status == 422
    out = io.BytesIO()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(out, format="PNG")
    unresized = PreprocessSpec(resize_mode="none", crop=16, resize=16)
    assert decode_upload(out.getvalue(), "small.png").shape == (10, 20, 3)  # decodable on its own
    with pytest.raises(UploadError, match="smaller than the 16x16 crop"):  # but not for these weights
        decode_upload(out.getvalue(), "small.png", spec=unresized)


def test_training_store_skips_or_blackens_a_refused_image(tmp_path):
    """memory mode lists and skips it; stream mode reads it as black and logs it, like an unreadable file."""
    from alexnet_lab.data.datasets import decode_all
    from alexnet_lab.data.index import DatasetIndex, Sample
    from alexnet_lab.data.stream import StreamedImages

    good, strip = tmp_path / "good.png", tmp_path / "strip.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(good)
    Image.fromarray(np.full((1, 3000, 3), 90, np.uint8)).save(strip)
    index = DatasetIndex([Sample(str(good), 0), Sample(str(strip), 1)], ("a", "b"))
    images, labels, bad = decode_all(index, TORCHVISION_IMAGENET)
    assert images.shape == (1, 256, 256, 3) and list(labels) == [0] and bad == [str(strip)]
    streamed = StreamedImages([str(good), str(strip)], TORCHVISION_IMAGENET)
    assert not streamed[1].any() and streamed[0].any()
