"""A Hub-ready folder: `model.safetensors` (with our metadata), `config.json` and a model card.

`alexnet convert WEIGHTS OUT_DIR --to hf` writes it; uploading stays the user's
`hf upload OWNER/REPO OUT_DIR .` (huggingface-cli upload in older huggingface_hub). The folder
goes through the project's output policy (core.fileio.check_output) with these three names as
the command's own files, and each file is written atomically, the weights first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.fileio import atomic_path, check_output, sha256_file
from alexnet_lab.weights.formats.safetensors_io import write_safetensors
from alexnet_lab.weights.hub import WEIGHTS_FILE
from alexnet_lab.weights.hub_card import CardFacts, hub_config, model_card, public_source, registry_facts

HUB_FORMAT = "hf"  # `convert --to hf`
HUB_FILES = (WEIGHTS_FILE, "config.json", "README.md")


def check_hub_folder(out_dir: str | os.PathLike[str], sources: Iterable[str | os.PathLike[str]] = (),
                     force: bool = False) -> None:
    """The output policy for a Hub folder: it may hold other files (left alone); our three files
    are replaced only with `force`; never an input or inside one."""
    check_output(out_dir, sources, force=force, kind="folder", owned=HUB_FILES)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_hub_folder(bundle: WeightBundle, out_dir: str | os.PathLike[str], facts: CardFacts | None = None,
                     name: str | None = None, sources: Iterable[str | os.PathLike[str]] = (),
                     force: bool = False) -> Path:
    """Write model.safetensors, config.json and README.md into `out_dir`.

    Args:
        bundle: the weights; their metadata travels in model.safetensors (the source reduced to
            a file name: the folder is meant to be public).
        facts: the card's figures, license and datasets; default: the registry entry's when the
            weights came from one (weights.hub_card.registry_facts).
        name: the model's name in the card (default: the folder's name).
        sources: the inputs, which the folder must not be or hold.
        force: replace our three files when they exist.

    Raises:
        UserInputError: the output policy refuses the folder.
    """
    out = Path(out_dir)
    check_hub_folder(out, sources, force)
    bundle = bundle.with_meta(source=public_source(bundle.meta.source))
    facts = facts if facts is not None else registry_facts(bundle.meta)
    out.mkdir(parents=True, exist_ok=True)
    weights = write_safetensors(bundle, out / WEIGHTS_FILE)
    config = hub_config(bundle, sha256_file(weights))
    _write_text(out / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    _write_text(out / "README.md", model_card(bundle, facts, name or out.resolve().name))
    return out
