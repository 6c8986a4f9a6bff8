"""What a Hub-ready folder says about its weights: config.json and the model card (README.md).

config.json holds what a program needs (architecture and variant, classes as label2id /
id2label, preprocessing, and timm's `pretrained_cfg`); the card holds what a person and the Hub
read: YAML front matter (library_name, tags, license, datasets, metrics as a model-index) and
a body with the preprocessing and how to load the weights in PyTorch and Keras. Both are built
from the WeightBundle's metadata and a :class:`CardFacts` (where the figures come from), as
plain text: writing them is :mod:`alexnet_lab.weights.hub_folder`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.version import __version__
from alexnet_lab.frameworks.registry import ENTRIES as FRAMEWORK_ENTRIES
from alexnet_lab.weights.catalog import model_cfg
from alexnet_lab.weights.hub import WEIGHTS_FILE
from alexnet_lab.weights.registry import get_entry, is_registry_name

LIBRARY = "alexnet-lab"
CONFIG_FORMAT = "alexnet-lab/hf-config"
PLACEHOLDER = "OWNER/REPO"  # the repository is chosen at upload time, not here


@dataclass(frozen=True)
class CardMetric:
    """One figure of the model card: `value` in percent, on `dataset` (a Hub id or a description)."""

    name: str  # 'top-1 accuracy'
    value: float
    dataset: str
    split: str = "validation"


@dataclass(frozen=True)
class CardFacts:
    """What the card states beyond the weights' own metadata, and where it comes from."""

    metrics: tuple[CardMetric, ...] = ()
    datasets: tuple[str, ...] = ()  # Hub dataset ids for the front matter
    license: str = "unknown"  # a Hub license id
    note: str = ""  # where the figures come from, in words
    description: str = ""


def public_source(source: str) -> str:
    """A registry name or URL as it is; a file or folder by its name only (the card is public)."""
    if "://" in source or ("/" not in source and "\\" not in source):
        return source
    return PurePath(source.replace("\\", "/").rstrip("/")).name


def registry_facts(meta: ModelMeta) -> CardFacts:
    """The registry entry's published figures and license when the weights came from one (their
    recorded hash, when there is one, must agree with the entry's); nothing otherwise."""
    if not is_registry_name(meta.source):
        return CardFacts(note="no evaluation recorded with these weights; add your own figures before uploading.")
    entry = get_entry(meta.source)
    if meta.source_sha256 and entry.expected_hash and not meta.source_sha256.startswith(entry.expected_hash):
        return CardFacts(note=f"the weights name '{entry.name}' as their source, but their hash does not match it: "
                         "no published figures are claimed.")
    names = {"acc@1": "top-1 accuracy", "acc@5": "top-5 accuracy"}
    metrics = tuple(CardMetric(names.get(k, k), v, entry.dataset or "imagenet-1k") for k, v in entry.metrics)
    return CardFacts(metrics, (entry.dataset,) if entry.dataset else (), entry.license_id or "unknown",
                     f"{entry.metrics_note} Terms: {entry.license}", entry.description)


def hub_config(bundle: WeightBundle, weights_sha256: str = "") -> dict[str, Any]:
    """config.json: architecture, classes, preprocessing and timm's pretrained_cfg."""
    meta = bundle.meta
    weights_name = meta.source if is_registry_name(meta.source) else None
    cfg = model_cfg(meta.variant, weights_name, meta.num_classes, meta.preprocess)
    cfg["input_size"] = (3, bundle.input_size, bundle.input_size)
    labels = list(meta.categories)
    label2id: dict[str, int] = {}
    for index, label in enumerate(labels):
        label2id.setdefault(label, index)  # a repeated name keeps its first index
    return {
        "format": CONFIG_FORMAT,
        "format_version": "1",
        "library_name": LIBRARY,
        "producer": f"{LIBRARY} {__version__}",
        "architecture": f"alexnet_{meta.variant}",
        "variant": meta.variant,
        "description": meta.arch.description,
        "num_classes": meta.num_classes,
        "num_features": meta.arch.convs[-1].out_channels,
        "input_size": bundle.input_size,
        "label_names": labels,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": label2id,
        "preprocessing": meta.preprocess.to_dict(),
        "preprocessing_summary": meta.preprocess.describe(),
        "pretrained_cfg": cfg,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": weights_sha256,
        "source": public_source(meta.source),
    }


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON scalar is a YAML double-quoted / plain scalar


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and JSON scalars (all the front matter needs)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:", to_yaml(item, indent + 2)]
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")  # an empty dict / list: {} / [] (flow style)
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = to_yaml(item, indent + 2).splitlines()
                lines += [f"{pad}- {nested[0].lstrip()}", *nested[1:]]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def front_matter(meta: ModelMeta, facts: CardFacts, name: str) -> dict[str, Any]:
    """The card's YAML front matter as a dict (model-index holds the figures)."""
    doc: dict[str, Any] = {
        "library_name": LIBRARY,
        "pipeline_tag": "image-classification",
        "license": facts.license,
        "tags": ["image-classification", "alexnet", f"alexnet-{meta.variant}", LIBRARY,
                 *(entry.hub_tag for entry in FRAMEWORK_ENTRIES.values()), "safetensors"],
    }
    if facts.datasets:
        doc["datasets"] = list(facts.datasets)
    doc["metrics"] = ["accuracy"] if facts.metrics else []
    doc["preprocessing"] = meta.preprocess.to_dict()
    if facts.metrics:
        results = []
        for dataset in dict.fromkeys(m.dataset for m in facts.metrics):
            rows = [m for m in facts.metrics if m.dataset == dataset]
            results.append({
                "task": {"type": "image-classification", "name": "Image Classification"},
                "dataset": {"name": dataset, "type": dataset, "split": rows[0].split},
                "metrics": [{"type": "accuracy", "name": m.name, "value": round(m.value, 3)} for m in rows],
            })
        doc["model-index"] = [{"name": name, "results": results}]
    return doc


def model_card(bundle: WeightBundle, facts: CardFacts, name: str) -> str:
    """README.md: YAML front matter, then what the weights are and how to load them."""
    meta = bundle.meta
    classes = ", ".join(meta.categories[:5]) + (", ..." if meta.num_classes > 5 else "")
    if facts.metrics:
        table = "| dataset | split | metric | value |\n|---|---|---|---|\n" + "\n".join(
            f"| {m.dataset} | {m.split} | {m.name} | {m.value:.3f}% |" for m in facts.metrics)
    else:
        table = "No figures."
    description = f"{facts.description}\n" if facts.description else ""
    return f"""---
{to_yaml(front_matter(meta, facts, name))}
---

# {name}

AlexNet, the `{meta.variant}` variant ({meta.arch.description}), with {meta.num_classes} classes ({classes}).
{description}
`{WEIGHTS_FILE}` holds the weights in alexnet-lab's canonical layout (PyTorch conventions, keys `conv1.weight`
... `fc8.bias`) with the variant, class names and preprocessing in its metadata, so loading it needs no flags;
`config.json` repeats them for other programs (`id2label`, timm's `pretrained_cfg`).
Source: {public_source(meta.source) or "-"}; written by {LIBRARY} {__version__}.

## Preprocessing

{meta.preprocess.describe()}

Input: {bundle.input_size}x{bundle.input_size}, {meta.preprocess.channel_order}. `alexnet_lab.transforms(...)` applies it.

## Results

{table}

{facts.note}

## Use it

```python
import alexnet_lab

model = alexnet_lab.alexnet("torch", weights="hf://{PLACEHOLDER}")   # torch.nn.Module, NCHW input
model = alexnet_lab.alexnet("keras", weights="hf://{PLACEHOLDER}")   # keras.Model, NHWC input
preprocess = alexnet_lab.transforms("hf://{PLACEHOLDER}")             # the preprocessing above
```

```bash
alexnet predict cat.jpg --weights hf://{PLACEHOLDER} --framework torch   # or --framework keras
alexnet info hf://{PLACEHOLDER}
```

`hf://{PLACEHOLDER}@REVISION` pins a branch, tag or commit; the file is cached by huggingface_hub
(HF_HUB_CACHE), and `HF_HUB_OFFLINE=1` uses the cache alone.

## Upload

This folder was written by `alexnet convert WEIGHTS OUT_DIR --to hf`; alexnet-lab does not upload.
Replace {PLACEHOLDER} above with your repository, then: `hf upload {PLACEHOLDER} OUT_DIR .`
"""
