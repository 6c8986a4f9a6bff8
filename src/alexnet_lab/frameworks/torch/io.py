"""Read and write `.pth` weight files: torchvision state dicts and project checkpoints.

Everything is loaded with torch.load(weights_only=True), which refuses pickles that would build
arbitrary objects. A written `.pth` is a plain state dict (torchvision's keys for owt) that
torchvision loads unchanged; the project's metadata rides in the state dict's `_metadata`
entry, which load_state_dict ignores.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.errors import LayoutError, WeightFormatError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.spec import VARIANTS
from alexnet_lab.frameworks.torch.convert import state_dict_keys, state_dict_to_canonical
from alexnet_lab.frameworks.torch.network import AlexNet

META_KEY = "alexnet_lab"


def _skeleton(variant: str, num_classes: int) -> AlexNet:
    with torch.device("meta"):  # key names only: no memory, no initialisation cost
        return AlexNet(VARIANTS[variant], num_classes)


def _detect_variant(state: Mapping[str, torch.Tensor]) -> tuple[str, int]:
    for name in VARIANTS:
        keys = state_dict_keys(_skeleton(name, 1))
        fc8 = state.get(keys["fc8.weight"])
        if keys["conv1.weight"] in state and fc8 is not None:
            return name, int(fc8.shape[0])
    found = ", ".join(list(state)[:4])
    raise LayoutError(
        "the state dict matches no AlexNet variant: expected torchvision keys ('features.0.weight', "
        f"..., 'classifier.6.weight') or the project's ('features.conv1.weight', ...); received {found}, ..."
    )


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's weights_only error that names what was refused (its advice to turn
    weights_only off is deliberately not passed on)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for marker in ("Unsupported global", "Unsupported operand", "Unsupported class", "Unsupported"):
        for line in lines:
            if line.startswith(marker):
                return line.rstrip(".")
    return "a global or operation outside the allowed set"


def _torch_load(path: str | os.PathLike[str]) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightFormatError(
            f"{path}: refused to load a pickle that is not plain weights ({_unpickler_reason(exc)}); only "
            "state dicts of tensors are loaded, nothing in the file was run."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightFormatError(f"{path} is not a readable .pth file ({first}); re-create or re-download it.") from None


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str] | None]:
    """The state dict in a .pth (a plain one, or the 'model' entry of a project checkpoint) and
    the project metadata stored with it, if any."""
    obj = _torch_load(path)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj.get("model"), Mapping):
        meta = obj.get(META_KEY)
        return dict(obj["model"]), dict(meta) if isinstance(meta, Mapping) else None
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightFormatError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors; pass AlexNet weights.")
    meta_json = getattr(obj, "_metadata", {}).get("", {}).get(META_KEY)
    return dict(obj), json.loads(meta_json) if meta_json else None


def read_pth(path: str | os.PathLike[str], default_meta=None) -> WeightBundle:
    """Read a torchvision-format state dict or a project checkpoint as a WeightBundle.

    Args:
        path: the .pth / .pt file.
        default_meta: callable (variant, num_classes) -> ModelMeta for files without metadata.
    """
    state, meta_dict = read_state_dict(path)
    if meta_dict is not None:
        meta = ModelMeta.from_metadata(meta_dict, where=str(path))
        variant, num_classes = meta.variant, meta.num_classes
    else:
        variant, num_classes = _detect_variant(state)
        meta = default_meta(variant, num_classes)
    tensors = state_dict_to_canonical(state, _skeleton(variant, num_classes))
    return WeightBundle(tensors, meta)


def bundle_state_dict(bundle: WeightBundle) -> dict[str, torch.Tensor]:
    """State dict with the model's keys (torchvision's for owt) carrying the metadata."""
    keys = state_dict_keys(_skeleton(bundle.meta.variant, bundle.num_classes))
    state = type(torch.nn.Module().state_dict())()  # an OrderedDict with a _metadata attribute
    for key, sd_key in keys.items():
        state[sd_key] = torch.from_numpy(bundle.tensors[key].copy())
    state._metadata = {"": {"version": 1, META_KEY: json.dumps(bundle.metadata())}}
    return state


def write_pth(bundle: WeightBundle, path: str | os.PathLike[str]) -> Path:
    """Write a plain state dict (loads into torchvision's alexnet for owt) atomically."""
    with atomic_path(path) as tmp:
        torch.save(bundle_state_dict(bundle), tmp)
    return Path(path)


read_weights = read_pth  # the Backend protocol's names for this framework's weight file
write_weights = write_pth
