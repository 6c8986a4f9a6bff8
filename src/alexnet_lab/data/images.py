"""Reading image files into HxWx3 uint8 RGB arrays, the one decoder both frameworks share.

Every pixel-mode PIL can produce (grey, grey+alpha, palette, RGBA, CMYK, 16-bit, float...) is
turned into 8-bit RGB here, and EXIF orientation is applied, so a torch run and a Keras run see
the same pixels for the same file. Pixels are always fully decoded, so a truncated or corrupt
file fails here, with the file named, rather than as a black band in a training batch.

Transparency choice: alpha is composited onto a white background by default (how viewers show
a transparent PNG on a page, and the pixels under alpha 0 are often undefined garbage). Pass
``background=None`` to drop alpha instead, which is what ``PIL.Image.convert('RGB')`` and so
torchvision's ``ImageFolder`` loader do.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import DEFAULT_MAX_PIXELS, ImageReadError, PreprocessSpec, image_size_problem

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

WHITE = (255, 255, 255)
# Decoding needs 3 bytes a pixel and more for conversions; the header's size is checked first
# against DEFAULT_MAX_PIXELS (core.preprocessing, with the rest of the image guard) or this:
MAX_PIXELS_ENV = "ALEXNET_LAB_MAX_IMAGE_PIXELS"

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name ends with one of IMAGE_EXTENSIONS (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _error(path: str | os.PathLike[str], problem: str, action: str) -> ImageReadError:
    return ImageReadError(f"cannot read image '{os.fspath(path)}': {problem}; {action}")


def _corrupt(path: str | os.PathLike[str], exc: Exception) -> ImageReadError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return _error(
        path, f"the pixel data is truncated or corrupt ({reason})",
        "re-download or re-export the file, or remove it from the dataset.",
    )


def max_image_pixels() -> int:
    """The pixel budget: ALEXNET_LAB_MAX_IMAGE_PIXELS, else DEFAULT_MAX_PIXELS."""
    raw = os.environ.get(MAX_PIXELS_ENV, "")
    try:
        return int(raw) if raw else DEFAULT_MAX_PIXELS
    except ValueError:
        raise UserInputError(f"{MAX_PIXELS_ENV} must be a whole number of pixels; received '{raw}'.") from None


def _check_regular(path: str | os.PathLike[str]) -> None:
    """Refuse what is not a regular file before opening it: a FIFO would block, a device never end."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks: their target is what would be read
    except FileNotFoundError:
        raise _error(path, "no such file", "expected an existing image file; check the path.") from None
    except OSError as exc:
        raise _error(path, exc.strerror or str(exc), "check the path and its permissions.") from None
    if stat.S_ISDIR(mode):
        raise _error(path, "it is a folder", "expected an image file; pass a file path.")
    if not stat.S_ISREG(mode):
        raise _error(path, "it is not a regular file (a device, FIFO or socket)", "pass an image file.")


def check_image_file_size(path: str | os.PathLike[str], width: int, height: int,
                          spec: PreprocessSpec | None = None) -> None:
    """The image guard (core.preprocessing.image_size_problem) on a file's header size, with the
    file named and the pixel budget from MAX_PIXELS_ENV; raises ImageReadError."""
    budget = max_image_pixels()
    problem = image_size_problem(height, width, spec, budget)
    if problem is not None:
        raise _error(path, problem, f"downscale the file, or raise {MAX_PIXELS_ENV} if it is trusted." if
                     width * height > budget else "crop or pad it to a usual photo shape, or remove it from the data.")


def _check_pixels(path: str | os.PathLike[str], image: Image.Image, spec: PreprocessSpec | None) -> None:
    """Refuse an image from its header, before any pixel is decoded (check_image_file_size)."""
    try:
        check_image_file_size(path, image.size[0], image.size[1], spec)
    except ImageReadError:
        image.close()
        raise


# min_side: a fixed shorter side, or a plan called with the (oriented) header size, before any pixel
# is decoded, that returns it: a training view chooses its crop box first, then how far to reduce.
MinSide = int | Callable[[int, int], int | None] | None
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90 degrees


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header."""
    width, height = image.size
    try:
        turned = image.getexif().get(0x0112) in _SWAPS_SIDES
    except Exception:  # noqa: BLE001 - bad metadata: _apply_exif_orientation ignores it too
        turned = False
    return (width, height) if turned else (height, width)


def draft_size(width: int, height: int, min_side: int) -> tuple[int, int]:
    """The (width, height) asked of PIL's draft so that the shorter side stays >= min_side."""
    scale = min_side / min(width, height)
    return int(width * scale + 0.999), int(height * scale + 0.999)


def draft_reduction(width: int, height: int, min_side: int) -> int:
    """The DCT scale (1, 2, 4 or 8) PIL's draft decodes a width x height JPEG at for min_side:
    the largest that leaves both sides at least draft_size (PIL's JpegImageFile.draft rule)."""
    asked_w, asked_h = draft_size(width, height, min_side)
    factor = min(width // max(1, asked_w), height // max(1, asked_h))
    return next((scale for scale in (8, 4, 2, 1) if factor >= scale), 1)


def _open_decoded(path: str | os.PathLike[str], content: bytes | None = None,
                  min_side: MinSide = None, spec: PreprocessSpec | None = None) -> Image.Image:
    """Open `path` (or decode `content`, named `path`) and decode all its pixels (first frame of
    animations), mapping failures. `min_side`: a JPEG may be decoded at a reduced DCT scale (PIL's
    draft) as long as its shorter side stays >= min_side, several times faster for photos that are
    resized down anyway (docs/data.md, 'Measured'); a callable is asked for it with the oriented (height, width)."""
    if content is None:
        _check_regular(path)
    try:
        with warnings.catch_warnings():
            # PIL warns (does not raise) about huge images at open; its hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path if content is None else io.BytesIO(content))
    except UnidentifiedImageError:
        raise _error(
            path, "the file is not in an image format PIL can identify",
            f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}; remove or replace the file.",
        ) from None
    except PermissionError:
        raise _error(path, "permission denied", "make the file readable.") from None
    except Image.DecompressionBombError as exc:
        raise _error(path, f"it is too large to decode safely ({exc})", "downscale the file.") from None
    except Exception as exc:  # noqa: BLE001 - e.g. WebP builds its decoder, and fails, at open
        raise _corrupt(path, exc) from None
    _check_pixels(path, image, spec)
    if callable(min_side):
        min_side = min_side(*_oriented_size(image))
    if min_side is not None and image.format == "JPEG":
        image.draft(image.mode, draft_size(*image.size, min_side))
    try:
        image.load()
    # PIL's format plugins report corrupt data with many exception types (OSError, SyntaxError,
    # ValueError, struct.error, zlib.error, ...), so any failure while decoding means "corrupt".
    except Exception as exc:  # noqa: BLE001
        image.close()
        raise _corrupt(path, exc) from None
    return image


def plain_jpeg(path: str | os.PathLike[str]) -> tuple[bytes, int, int] | None:
    """(bytes, height, width) of a file that another libjpeg decoder (TensorFlow's, with the same
    IDCT) turns into the pixels read_image_rgb gives: a JPEG in RGB or grey, ending with its
    end-of-image marker (not truncated), with no EXIF rotation, that passes the image guard, read
    from its header only. None for anything else: read_image_rgb must read that file (it converts
    other modes, rotates, and reports why a file cannot be read)."""
    try:
        _check_regular(path)
        with open(path, "rb") as handle:
            content = handle.read()
        if not content.endswith(b"\xff\xd9"):  # truncated, or bytes after the image: PIL decides
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
        with image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L") or image.getexif().get(0x0112, 1) != 1:
                return None
            width, height = image.size
        check_image_file_size(path, width, height)  # the guard read_image_rgb applies, on the header size
    except Exception:  # noqa: BLE001 - whatever fails here, read_image_rgb reads (and names) the file
        return None
    return content, height, width


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip per the EXIF Orientation tag; a malformed EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - bad metadata must not make good pixels unreadable
        return image


def _sixteen_bit_to_rgb(image: Image.Image) -> np.ndarray:
    """Scale 16-bit (or 32-bit int) grey to 8 bits; PIL's convert('RGB') would clip instead."""
    values = np.asarray(image).astype(np.float64)
    if image.mode == "I" and values.max(initial=0) <= 255:
        full_scale = 255.0  # mode "I" holding 8-bit data (some TIFF/PNG writers do this)
    else:
        full_scale = 65535.0
    grey = np.clip(np.rint(values * (255.0 / full_scale)), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _float_to_rgb(image: Image.Image) -> np.ndarray:
    """Mode 'F' (float grey): values within [0, 1] are treated as [0, 1] scaled, else 0-255."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if values.size and values.min() >= 0.0 and values.max() <= 1.0:
        values = values * 255.0
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Alpha-blend an HxWx4 uint8 array onto a solid background colour."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    colour = rgba[:, :, :3].astype(np.float32)
    out = colour * alpha + np.asarray(background, dtype=np.float32) * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb_array(image: Image.Image, background: tuple[int, int, int] | None = WHITE) -> np.ndarray:
    """Convert a decoded PIL image of any mode to an HxWx3 uint8 RGB array.

    Args:
        image: a loaded PIL image.
        background: colour that transparent pixels are composited onto; None drops alpha.

    Returns:
        A new, writeable, C-contiguous uint8 array of shape (height, width, 3).
    """
    if background is not None and (len(background) != 3 or not all(0 <= int(c) <= 255 for c in background)):
        raise UserInputError(
            f"background must be an (R, G, B) tuple of 0-255 values or None; received {background!r}."
        )
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _sixteen_bit_to_rgb(image)
    if mode == "F":
        return _float_to_rgb(image)
    has_alpha = mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha and background is not None:
        return _composite(np.asarray(image.convert("RGBA")), background)
    if mode == "P" and has_alpha:
        image = image.convert("RGBA")  # palette transparency must go via RGBA; PIL warns otherwise
    return np.array(image if mode == "RGB" else image.convert("RGB"), dtype=np.uint8)  # RGB: no PIL copy first


def read_image_rgb(
    path: str | os.PathLike[str], background: tuple[int, int, int] | None = WHITE,
    content: bytes | None = None, min_side: MinSide = None, spec: PreprocessSpec | None = None,
) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array with EXIF orientation applied.

    Args:
        path: image file; any format PIL decodes (the first frame of a GIF/TIFF animation).
        background: RGB colour for transparent pixels (white by default); None drops alpha.
        content: the file's bytes when they are already read (a tar member); `path` names them.
        min_side: allow reduced-size JPEG decoding down to this shorter side, or a callable that
            returns it from the oriented (height, width) before decoding (see _open_decoded).
        spec: the preprocessing the pixels are for; the guard then also checks the resized size.

    Returns:
        A new uint8 array of shape (height, width, 3).

    Raises:
        ImageReadError: the file is missing, is not an image, is truncated/corrupt, or fails the
            image guard (core.preprocessing.image_size_problem: pixel budget, aspect ratio).
    """
    image = _open_decoded(path, content, min_side, spec)
    try:
        oriented = _apply_exif_orientation(image)
        try:
            return to_rgb_array(oriented, background)
        except (OSError, ValueError) as exc:
            raise _error(
                path, f"pixel mode '{oriented.mode}' cannot be converted to RGB ({exc})",
                "re-save the image as 8-bit RGB.",
            ) from None
    finally:
        image.close()
