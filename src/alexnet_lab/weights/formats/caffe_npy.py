"""Caffe-TF `bvlc_alexnet.npy`: a safe reader and a writer, converting to and from canonical.

The file is `np.save` of a Python 2 dict ``{'conv1': [weights, biases], ...}`` (or of
``{'conv1': {'weights': w, 'biases': b}}``; keys may be bytes), i.e. a pickle inside a .npy.
Unpickling untrusted data can run any code, so the reader never calls `np.load(allow_pickle=True)`:
it parses the .npy header itself and unpickles with :class:`RestrictedUnpickler`, which resolves
only the handful of globals that numpy arrays need and refuses everything else *before* it runs.

Array layouts (TF conventions, i.e. the HWIO layout of core.transforms, which does the
conversion) and their canonical (PyTorch) counterparts:
    conv  (kH, kW, in/groups, out)  -> (out, in/groups, kH, kW)  = transpose(3, 2, 0, 1)
    dense (in, out)                 -> (out, in)                 = .T
    fc6   rows ordered H,W,C (TF flattens NHWC) -> columns ordered C,H,W (torch flattens NCHW):
          canonical[o, c*H*W + h*W + w] = npy[(h*W + w)*C + c, o]
"""

from __future__ import annotations

import ast
import os
import pickle
import struct
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from alexnet_lab.core.errors import LayoutError, WeightFormatError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.layout import CANONICAL_LAYERS, as_canonical, infer_variant
from alexnet_lab.core.spec import ArchSpec
from alexnet_lab.core.transforms import (
    canonical_to_hwio,
    conv_from_hwio,
    dense_from_io,
    fc6_from_hwc_rows,
    fc6_to_hwc_rows,
    hwio_to_canonical,
)

CONV_LAYERS = CANONICAL_LAYERS[:5]
NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10_000  # numpy's own default limit; a longer header means a corrupt file
# what a truncated or bit-flipped pickle raises inside the unpickler or numpy's __setstate__
_TRUNCATED_OR_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                         IndexError, KeyError, OverflowError, MemoryError, RecursionError, struct.error)


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for `_codecs.encode`, which Python 3 protocol 0-2 pickles use to rebuild bytes.

    Only the latin-1 round trip pickle itself emits is allowed; any other codec is refused.
    """
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") != "latin1":
        raise pickle.UnpicklingError(f"unexpected _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1", errors)


@lru_cache(maxsize=1)
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled dict of numpy arrays refers to, mapped to the real objects.

    The objects are taken from numpy's own reducers rather than imported by name, so the
    numpy 1.x (`numpy.core.*`) and 2.x (`numpy._core.*`) spellings both resolve without
    importing anything and without numpy.core's deprecation warning.
    """
    sample = np.zeros(1, dtype=np.float32)
    reconstruct = sample.__reduce__()[0]  # multiarray._reconstruct (protocols 0-4)
    scalar = np.float32(0).__reduce__()[0]  # multiarray.scalar (numpy scalars such as np.float32(1))
    frombuffer = sample.__reduce_ex__(5)[0]  # numeric._frombuffer (protocol 5, contiguous arrays)
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    allowed[("_codecs", "encode")] = _latin1_encode  # bytes in Python 3 protocol 0-2 pickles
    for builtins_name in ("builtins", "__builtin__"):  # Python 3 and Python 2 spelling
        allowed[(builtins_name, "bytes")] = bytes  # b'' in Python 3 protocol 0-2 pickles
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers and nothing else.

    Dicts, lists, tuples, str, bytes and numbers come from opcodes and need no globals; every
    global (GLOBAL, STACK_GLOBAL, INST, OBJ and the extension registry all go through
    find_class) must be in the allow-list, so nothing outside it is imported or called.
    """

    def __init__(self, file: BinaryIO, where: str) -> None:
        # Python 2 str -> bytes, not latin-1 str: the pickle memo keeps every string alive until the
        # load ends, and numpy adopts a large bytes buffer as the array memory instead of copying
        # it, so the array data is held once (latin-1 would hold it as str *and* as re-encoded bytes).
        # Dict keys arrive as bytes too; caffe_layers decodes them.
        super().__init__(file, encoding="bytes")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise WeightFormatError(
                f"alexnet-lab refuses to load {self.where}: it would import '{module}.{name}', which a "
                "weight file never needs (the file may be malicious); get the weights from a trusted source."
            ) from None


def restricted_load(fh: BinaryIO, where: str) -> Any:
    """Unpickle from `fh` with :class:`RestrictedUnpickler`.

    Raises:
        WeightFormatError: for a forbidden global, or a truncated or corrupt pickle.
    """
    try:
        return RestrictedUnpickler(fh, where).load()
    except WeightFormatError:  # a refusal; it is also a ValueError, so keep it before the catch-all
        raise
    except _TRUNCATED_OR_CORRUPT as exc:
        raise WeightFormatError(
            f"{where} is truncated or corrupt (unpickling failed: {type(exc).__name__}: {exc}); download it again."
        ) from None


def _read_npy_header(fh: BinaryIO, where: str) -> dict[str, Any]:
    """Parse a .npy header (versions 1.0, 2.0 and 3.0) without trusting it."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != NPY_MAGIC:
        raise WeightFormatError(f"{where} is not a .npy file (it does not start with {NPY_MAGIC!r}); expected a Caffe-TF .npy.")
    major = magic[6]
    size_format = "<H" if major == 1 else "<I"
    raw_size = fh.read(struct.calcsize(size_format))
    if major not in (1, 2, 3) or len(raw_size) != struct.calcsize(size_format):
        raise WeightFormatError(f"{where} has an unknown or truncated .npy header (version {major}); download it again.")
    (size,) = struct.unpack(size_format, raw_size)
    raw = fh.read(size) if size <= MAX_HEADER_BYTES else b""
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise WeightFormatError(f"{where} has a truncated or corrupt .npy header; download it again.")
    return header


def load_npy_object(path: str | os.PathLike[str]) -> Any:
    """The Python object pickled inside a .npy, safely: what ``np.load(path, allow_pickle=True,
    encoding='bytes').item()`` would return (Python 2 strings come back as bytes).

    Raises:
        WeightFormatError: unreadable, truncated or corrupt file, unsafe pickle, or a plain array.
    """
    where = str(path)
    try:
        with open(path, "rb") as fh:
            header = _read_npy_header(fh, where)
            if header["descr"] not in ("|O", "O", "object"):
                raise WeightFormatError(
                    f"{where} holds a plain {header['descr']} array of shape {header['shape']}, not a "
                    "Caffe-TF weight dict; expected np.save of {'conv1': [weights, biases], ...}."
                )
            obj = restricted_load(fh, where)
    except OSError as exc:
        raise WeightFormatError(f"cannot read {where} ({exc.strerror or exc}); check the path.") from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.size == 1:
        obj = obj.reshape(()).item()  # np.save wraps the dict in a 0-d object array
    return obj


def _as_array(value: Any, layer: str, part: str, ndim: int, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.ndim != ndim:
        got = f"shape {value.shape}, dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise WeightFormatError(f"{where}: '{layer}' {part}: expected a {ndim}-D numeric array, received {got}.")
    return value


def _layer_pair(layer: str, value: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(weights, biases) from `[w, b]` / `(w, b)` or `{'weights': w, 'biases': b}` (str or bytes keys)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        weights, biases = value
    elif isinstance(value, Mapping):
        named = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in value.items()}
        if set(named) != {"weights", "biases"}:
            raise WeightFormatError(
                f"{where}: '{layer}' has keys {sorted(map(str, named))}; expected exactly 'weights' and 'biases'."
            )
        weights, biases = named["weights"], named["biases"]
    else:
        raise WeightFormatError(
            f"{where}: '{layer}' is a {type(value).__name__}; expected [weights, biases] or "
            "{'weights': w, 'biases': b}."
        )
    ndim = 4 if layer in CONV_LAYERS else 2
    return _as_array(weights, layer, "weights", ndim, where), _as_array(biases, layer, "biases", 1, where)


def caffe_layers(obj: Any, where: str = "the file") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalise a Caffe-TF weight dict to ``{layer: (weights, biases)}`` with str layer names."""
    if not isinstance(obj, Mapping):
        raise WeightFormatError(
            f"{where} holds a {type(obj).__name__}, not a dict of layers; expected "
            "{'conv1': [weights, biases], ..., 'fc8': [...]}."
        )
    names = {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}
    unknown = sorted(n for n in names if n not in CANONICAL_LAYERS)
    if unknown:
        raise WeightFormatError(f"{where} has unexpected layers {unknown}; expected only {', '.join(CANONICAL_LAYERS)}.")
    return {name: _layer_pair(name, names[name], where) for name in CANONICAL_LAYERS if name in names}


# The Caffe-TF layout *is* the HWIO layout Keras uses (see core.transforms), so the transposes
# and the fc6 permutation are the shared ones; these names are kept for readers of this module.
fc6_from_caffe = fc6_from_hwc_rows
fc6_to_caffe = fc6_to_hwc_rows


def _variant_of(layers: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> ArchSpec:
    """The variant whose conv1/conv2 shapes the layers have (only those two are transposed)."""
    probe = {f"{name}.weight": conv_from_hwio(layers[name][0]) for name in ("conv1", "conv2") if name in layers}
    return infer_variant(probe)


def _convert_layer(name: str, pair: tuple[np.ndarray, np.ndarray], spec: ArchSpec) -> dict[str, np.ndarray]:
    if name == "fc6" and pair[0].shape[0] != spec.flat_features:
        # fc6 rows can only be re-ordered from H,W,C to C,H,W when there are C*H*W of them; a
        # mis-sized fc6 is passed on transposed, so the layout check lists it with the other problems
        return {"fc6.weight": dense_from_io(pair[0]), "fc6.bias": pair[1]}
    return hwio_to_canonical({name: pair}, spec)


def _pop_to_canonical(layers: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Convert while emptying `layers`: each source array is released once its canonical copy
    exists, so converting costs one layer's extra memory, not the whole file's again."""
    spec = _variant_of(layers)
    tensors: dict[str, np.ndarray] = {}
    while layers:
        name, pair = layers.popitem()
        tensors.update(_convert_layer(name, pair, spec))
        del pair
    return as_canonical(tensors, spec)


def canonical_to_caffe(tensors: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Canonical tensors -> the Caffe-TF dict ``{'conv1': [weights, biases], ...}`` (float32)."""
    spec = infer_variant(tensors)
    hwio = canonical_to_hwio(as_canonical(tensors, spec), spec)
    return {layer: [kernel, bias] for layer, (kernel, bias) in hwio.items()}


def read_caffe_npy(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a Caffe-TF `.npy` (such as `bvlc_alexnet.npy`) into canonical tensors, safely.

    Returns:
        ``{'conv1.weight': ..., ..., 'fc8.bias': ...}``: contiguous float32, canonical layout,
        validated against the variant the shapes match (normally 'original').

    Raises:
        WeightFormatError: unreadable, truncated, corrupt or unsafe file, or an unknown layout.
        LayoutError: the layers are there but their shapes fit no AlexNet variant.
    """
    layers = caffe_layers(load_npy_object(path), str(path))
    try:
        return _pop_to_canonical(layers)  # the only reference to the arrays: freed as they convert
    except LayoutError as exc:
        raise LayoutError(f"{path}: {exc}") from None


def write_caffe_npy(tensors: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Write canonical tensors as a Caffe-TF `.npy` (dict of [weights, biases], str keys), atomically.

    The file loads with the classic ``np.load(path, allow_pickle=True, encoding='latin1').item()``
    as well as with :func:`read_caffe_npy`. It is written with numpy's pickle protocol, so it
    is readable from Python 3 only.

    Raises:
        LayoutError: when the tensors do not fit the canonical layout of a variant.
    """
    layers = canonical_to_caffe(tensors)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, layers, allow_pickle=True)  # a file handle, so np.save adds no '.npy' suffix
    return Path(path)
