"""Uploaded images: size and pixel limits with an HTTP status for each refusal, and PNG encoding.

Refusals: more bytes than the limit -> 413; a header declaring more pixels than the budget -> 413,
or a shape the image guard refuses (core.preprocessing.image_size_problem: a 1xN strip) -> 422,
both checked before decoding; not an image -> 415; an image whose pixels cannot all be decoded
(truncated, corrupt) -> 422. Decoding itself is data.images.read_image_rgb, the one decoder the
commands use, so the server sees the same pixels as `alexnet predict`.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from alexnet_lab.core.preprocessing import PreprocessSpec, image_size_problem
from alexnet_lab.data.images import ImageReadError, max_image_pixels, read_image_rgb

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a large phone photo is under 10 MB


class UploadError(Exception):
    """An upload the server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _check_header(data: bytes, name: str, spec: PreprocessSpec | None = None) -> None:
    """415 when PIL cannot identify the format; 413 when the header declares too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        raise UploadError(415, f"'{name}' is not an image this server can read; send a JPEG, PNG, BMP, GIF, "
                          "WebP or TIFF file.") from None
    budget = max_image_pixels()
    problem = image_size_problem(height, width, spec, budget)  # the image guard every command uses
    if problem is not None:
        raise UploadError(413 if width * height > budget else 422, f"'{name}': {problem}; send a smaller image "
                          "of a usual photo shape.")


def decode_upload(data: bytes, name: str, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                  spec: PreprocessSpec | None = None) -> np.ndarray:
    """The uploaded file as an HxWx3 uint8 RGB array; with the served weights' `spec`, the image
    guard also checks the resize it will get (so preprocess cannot refuse it later).

    Raises:
        UploadError: 413, 415 or 422 as described in the module docstring.
    """
    if len(data) > max_bytes:
        raise UploadError(413, f"'{name}' is {len(data):,} bytes, over the {max_bytes:,}-byte upload limit; send a "
                          "smaller file.")
    if not data:
        raise UploadError(422, f"'{name}' is empty; send an image file.")
    _check_header(data, name, spec)
    suffix = os.path.splitext(name)[1].lower()[:8]
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:  # read_image_rgb reads files, as the CLI does
        handle.write(data)
        handle.flush()
        try:
            return read_image_rgb(handle.name)
        except ImageReadError as exc:
            problem = str(exc).split(": ", 1)[-1].split(";")[0]  # the decoder's reason, without its CLI advice
            raise UploadError(422, f"'{name}' cannot be decoded: {problem}; send the complete file.") from None


def png_bytes(image: np.ndarray) -> bytes:
    """A PNG file of an HxWx3 (or HxW) uint8 array."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()
