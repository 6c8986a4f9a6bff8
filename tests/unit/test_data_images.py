"""read_image_rgb: every pixel mode becomes HxWx3 uint8 RGB; bad files raise one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.data import IMAGE_EXTENSIONS, ImageReadError, is_image_path, read_image_rgb, to_rgb_array


def _rgb(height: int = 12, width: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _check_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert array.dtype == np.uint8 and array.shape == (height, width, 3)
    assert array.flags.c_contiguous and array.flags.writeable


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = _rgb()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image_rgb(tmp_path / "a.png")
    _check_rgb(out, 12, 16)
    np.testing.assert_array_equal(out, pixels)


def test_grayscale_and_bilevel_become_three_equal_channels(tmp_path: Path) -> None:
    grey = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    Image.fromarray(grey > 100).save(tmp_path / "b.png")
    out = read_image_rgb(tmp_path / "g.png")
    _check_rgb(out, 12, 16)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)
    assert set(np.unique(read_image_rgb(tmp_path / "b.png"))) <= {0, 255}


def test_rgba_composites_on_white_or_drops_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red under the alpha
    rgba[:2, :, 3] = 0  # top half fully transparent
    rgba[2:, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = read_image_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[:2], 255)  # transparent -> white background
    np.testing.assert_array_equal(out[2:], np.broadcast_to([200, 0, 0], (2, 4, 3)))
    dropped = read_image_rgb(tmp_path / "a.png", background=None)
    np.testing.assert_array_equal(dropped[:2], np.broadcast_to([200, 0, 0], (2, 4, 3)))
    black = read_image_rgb(tmp_path / "a.png", background=(0, 0, 0))
    np.testing.assert_array_equal(black[:2], 0)


def test_half_transparent_grey_alpha_blends(tmp_path: Path) -> None:
    la = np.zeros((3, 3, 2), dtype=np.uint8)
    la[..., 1] = 128
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = read_image_rgb(tmp_path / "la.png")
    np.testing.assert_allclose(out.astype(int), 127, atol=1)  # 0 * 0.5 + 255 * 0.5


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    palette = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.save(tmp_path / "p.png")
    out = read_image_rgb(tmp_path / "p.png")
    np.testing.assert_array_equal(out, np.asarray(palette.convert("RGB")))
    indices = np.zeros((4, 4), dtype=np.uint8)
    indices[:, 2:] = 1
    transparent = Image.fromarray(indices, mode="P")
    transparent.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    transparent.save(tmp_path / "t.gif", transparency=0)
    gif = read_image_rgb(tmp_path / "t.gif")
    np.testing.assert_array_equal(gif[:, :2], 255)  # index 0 is transparent -> white
    np.testing.assert_array_equal(gif[:, 2:], np.broadcast_to([0, 255, 0], (4, 2, 3)))


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[:, :8] = (220, 30, 30)
    pixels[:, 8:] = (30, 30, 220)
    Image.fromarray(pixels).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = read_image_rgb(tmp_path / "c.jpg")
    _check_rgb(out, 16, 16)
    np.testing.assert_allclose(out[4:12, 2:6].mean(axis=(0, 1)), (220, 30, 30), atol=12)
    np.testing.assert_allclose(out[4:12, 10:14].mean(axis=(0, 1)), (30, 30, 220), atol=12)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = read_image_rgb(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 64, 128, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_float_tiff_in_unit_range_is_scaled(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "f.tif")[0, :, 1], [0, 128, 255])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image_rgb(tmp_path / "r.jpg")
    assert out.shape == (20, 10, 3)
    assert out[:8].mean() > 200 and out[12:].mean() < 50  # the white half is now on top


def test_first_frame_of_an_animated_gif(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (5, 5), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = read_image_rgb(tmp_path / "anim.gif")
    assert out.shape == (5, 5, 3) and out[..., 0].min() > 200 and out[..., 2].max() < 50


@pytest.mark.parametrize("extension", [".jpg", ".png", ".tif", ".webp"])
def test_truncated_file_raises(tmp_path: Path, extension: str) -> None:
    source = tmp_path / f"full{extension}"
    Image.fromarray(_rgb(64, 64)).save(source)
    data = source.read_bytes()
    broken = tmp_path / f"broken{extension}"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or corrupt") as info:
        read_image_rgb(broken)
    assert str(broken) in str(info.value)


def test_text_file_named_jpg_raises_not_an_image(tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError, match="not in an image format") as info:
        read_image_rgb(fake)
    message = str(info.value)
    assert "\n" not in message and str(fake) in message and ".png" in message


def test_missing_file_and_folder_raise(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_image_rgb(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image_rgb(tmp_path)


def test_errors_belong_to_the_project_hierarchy(tmp_path: Path) -> None:
    with pytest.raises(AlexnetLabError):
        read_image_rgb(tmp_path / "nope.png")
    with pytest.raises(ValueError):
        to_rgb_array(Image.new("RGBA", (2, 2)), background=(1, 2))


def test_image_extensions_are_case_insensitive() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"} == set(IMAGE_EXTENSIONS)
    assert is_image_path("a/B.JPG") and is_image_path("x.TiFf") and not is_image_path("notes.txt")


def test_importing_the_data_layer_loads_no_framework() -> None:
    code = (
        "import sys, alexnet_lab.data; "
        "loaded = [m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
