"""`alexnet convert WEIGHTS OUT_DIR --to hf`: a Hub-ready folder with the figures that belong to it.

The card's figures come from the run's eval.json when WEIGHTS is a training run folder (the
validation split of its data, the best model's), else from the registry entry the weights came
from (weights.hub_card.registry_facts). The writing itself is weights.hub_folder's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from alexnet_lab.core.bundle import ModelMeta
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.evaluate.metrics import read_eval_json
from alexnet_lab.weights.files import load_weights, run_weights_file, source_files
from alexnet_lab.weights.hub_card import CardFacts, CardMetric, public_source, registry_facts
from alexnet_lab.weights.hub_folder import check_hub_folder, write_hub_folder

# `alexnet train --data` names with a Hub dataset id
HUB_DATASETS = {"cifar10": "uoft-cs/cifar10", "imagenet-val": "imagenet-1k"}


def run_facts(run_dir: Path, meta: ModelMeta) -> CardFacts:
    """The card's figures from a run folder's eval.json (top-1 and top-5 of its best model)."""
    run = RunFolder(run_dir)
    if run_weights_file(run_dir) != run.best_weights or not run.eval.is_file():
        return registry_facts(meta)  # eval.json measures best.safetensors only
    result = read_eval_json(run.eval)
    try:
        config = json.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    data = str(config.get("data", "")) if isinstance(config, dict) else ""
    hub_id = HUB_DATASETS.get(data, "")
    dataset = hub_id or f"{public_source(data) or 'training data'} (local)"
    metrics = (CardMetric("top-1 accuracy", 100 * result.top1, dataset),
               CardMetric(f"top-{result.top5_k} accuracy", 100 * result.top5, dataset))
    note = (f"Measured by `alexnet train` on the validation split of `{public_source(data) or '?'}` "
            f"({result.num_images} images, best epoch's model; eval.json of run '{run_dir.resolve().name}').")
    return CardFacts(metrics, (hub_id,) if hub_id else (), "unknown", note,
                     f"Trained with alexnet-lab ({config.get('strategy', '?')} strategy, {config.get('framework', '?')})."
                     if isinstance(config, dict) else "")


def export_hub_folder(source: str | os.PathLike[str], out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """Load `source` (registry name, file, run folder or hf:// reference) and write its Hub folder.

    The output policy is checked before the weights are read.

    Raises:
        UserInputError: the folder is refused, or the weights cannot be read.
    """
    sources = source_files(source)
    check_hub_folder(out_dir, sources, force)
    bundle = load_weights(source)
    path = Path(str(source)).expanduser()
    facts = run_facts(path, bundle.meta) if path.is_dir() else registry_facts(bundle.meta)
    return write_hub_folder(bundle, out_dir, facts, sources=sources, force=force)
