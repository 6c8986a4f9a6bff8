"""Run a training job end to end, framework-neutrally: resolve the data and preprocessing, set up
the run folder, hand over to the framework's loop, then evaluate the best model and plot.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from alexnet_lab.core.bundle import ModelMeta
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET, PreprocessSpec
from alexnet_lab.data import load_split, save_split
from alexnet_lab.train.config import RunConfig
from alexnet_lab.train.datasets import AUGMENTS, DataSplits, decode_all, normalisation, resolve_data
from alexnet_lab.train.runlog import RunContext
from alexnet_lab.train.world import World, current_world

log = logging.getLogger(__name__)

# CIFAR-10 training-set channel statistics (RGB, on the [0, 1] scale)
CIFAR_PREPROCESS = PreprocessSpec(resize=32, resize_mode="square", crop=32, mean=(0.4914, 0.4822, 0.4465),
                                  std=(0.2470, 0.2435, 0.2616), name="cifar-32")


def scratch_preprocess(variant: str, input_size: int) -> PreprocessSpec:
    """Preprocessing for a model trained from scratch: the variant's usual one."""
    if variant == "cifar":
        base = CIFAR_PREPROCESS
    else:
        base = BVLC_CAFFE if variant == "original" else TORCHVISION_IMAGENET
    if input_size and input_size != base.crop:
        resize = input_size if base.resize == base.crop else round(input_size * base.resize / base.crop)
        base = replace(base, resize=resize, crop=input_size)
    return base


def _saved_config(config: RunConfig) -> RunConfig:
    """For --resume: the run's own settings, framework included, not the command line's defaults."""
    run_dir = Path(config.out)
    if not (run_dir / "config.json").is_file():
        raise UserInputError(f"--resume: '{run_dir}' is not a run folder (no config.json); check --out.")
    saved = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    return replace(saved, resume=True, out=config.out)


def _run_folder(config: RunConfig, world: World) -> tuple[Path, Path | None]:
    run_dir = Path(config.out)
    last = run_dir / "checkpoints" / "last.pt"
    if config.resume:
        return run_dir, last if last.is_file() else None
    if not world.is_main:
        return run_dir, None  # the main process checks and creates the folder; it may already have
    if (run_dir / "config.json").exists():
        raise UserInputError(f"run folder '{run_dir}' already holds a run; pass --resume to continue it or a new --out.")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, None


def _splits(config: RunConfig, run_dir: Path, world: World) -> DataSplits:
    split_file = run_dir / "split.json"
    # synthetic and cifar10 samples are virtual paths, listed again exactly from the seed
    if config.resume and split_file.is_file() and config.data not in ("synthetic", "cifar10"):
        found = load_split(split_file)
        names = found["train"].class_names
        return DataSplits(found, names, f"{config.data} (split from {split_file})")
    data = resolve_data(config.data, data_dir=config.data_dir, val_data=config.val_data, val_ratio=config.val_ratio, test_ratio=config.test_ratio,
                        seed=config.seed, synthetic_per_class=config.synthetic_per_class,
                        limit_per_class=config.limit_per_class)
    if world.is_main:
        save_split(data.splits, split_file)
    return data


def _decode(ctx: RunContext, data: DataSplits, spec: PreprocessSpec, strict: bool) -> dict:
    stores = {}
    for name in ("train", "val"):
        index = data.splits[name]
        with ctx.progress(total=len(index), desc=f"decoding {name}") as bar:
            images, labels, bad = decode_all(index, spec, strict, progress=bar.update)
        if bad:
            log.warning("%s: skipped %d unreadable image(s), e.g. %s", name, len(bad), bad[0])
        skipped = set(bad)
        stores[name] = (images, labels)
        stores[f"{name}_paths"] = [s.path for s in index.samples if s.path not in skipped]
    return stores


def run_training(config: RunConfig) -> Path | None:
    """Train as configured; returns the run folder, or None in the processes of a distributed run
    that do not write it (all but rank 0 / the chief)."""
    from alexnet_lab.frameworks import get_backend
    from alexnet_lab.weights import load_weights

    get_backend(config.framework)  # fail fast on a bad framework name
    if config.resume:
        config = _saved_config(config)
    world = current_world(config.distribute)
    if not world.is_main:  # one log for a distributed job, from rank 0
        logging.getLogger("alexnet_lab").setLevel(logging.WARNING)
    run_dir, checkpoint = _run_folder(config, world)
    if world.distributed and config.framework != "torch" and config.distribute == "none":
        raise UserInputError(f"torchrun starts PyTorch training only (this run is --framework {config.framework}); "
                             "for Keras use --distribute mirrored or multi-worker in a single process per machine.")
    if config.framework == "torch":
        world.split_batch(config.batch_size)  # checked before the data is decoded
    backend = get_backend(config.framework)
    bundle = load_weights(config.weights) if config.weights != "none" else None
    variant = bundle.meta.variant if bundle is not None else config.variant
    data = _splits(config, run_dir, world)
    spec = bundle.meta.preprocess if bundle is not None else scratch_preprocess(variant, config.input_size)
    meta = ModelMeta(variant, data.class_names, spec, source=f"run {run_dir.name}", input_size=spec.crop)
    config = replace(config, variant=variant)
    log.info("data: %s", data.description)
    ctx = RunContext(run_dir, meta, checkpoint, world=world)
    try:
        stores = _decode(ctx, data, spec, config.strict)
        if world.is_main:
            with atomic_path(run_dir / "config.json") as tmp:
                tmp.write_text(config.to_json())
        resolved = backend.train.train_run(config, ctx, stores, bundle, AUGMENTS[config.augment], normalisation(spec))
        if world.is_main:  # the others have finished their share once training ends
            _write_resolved(run_dir, resolved, meta.arch.param_count(meta.num_classes))
            finish_run(run_dir, config, stores["val"], stores["val_paths"])
    finally:
        ctx.close()
    return run_dir if world.is_main else None


def _write_resolved(run_dir: Path, resolved: dict, params: int) -> None:
    """Add what was decided at run time (device, precision, ...) and the model size to config.json."""
    data = json.loads((run_dir / "config.json").read_text())
    data["resolved"], data["params"] = resolved, params
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


def finish_run(run_dir: Path, config: RunConfig, val_store, val_paths: list[str], samples: int = 32) -> None:
    """Evaluate the best model on the validation store; write eval.json, samples.json and plots."""
    from alexnet_lab.evaluate import ensure_plots, evaluate_logits, load_run, plot_samples, write_eval_json
    from alexnet_lab.evaluate.run_eval import logits_for_store
    from alexnet_lab.weights import load_weights

    bundle = load_weights(run_dir / "best.safetensors")
    images, labels = val_store
    logits = logits_for_store(bundle, images, config.framework, device=config.device)
    result = evaluate_logits(logits, labels, bundle.meta.categories)
    write_eval_json(result, run_dir / "eval.json")
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    pick = np.random.default_rng(0).permutation(len(labels))[:samples]
    doc = {"class_names": list(bundle.meta.categories),
           "samples": [{"path": val_paths[i], "true": int(labels[i]), "pred": int(probs[i].argmax()),
                        "prob": float(probs[i].max())} for i in pick]}
    with atomic_path(run_dir / "samples.json") as tmp:
        tmp.write_text(json.dumps(doc))
    plot_samples(list(images[pick]), labels[pick].tolist(), probs[pick].argmax(1).tolist(), probs[pick].max(1).tolist(),
                 bundle.meta.categories, run_dir / "plots" / "samples.png")
    ensure_plots(load_run(run_dir))
    log.info("best model: val top-1 %.2f%%, top-5 %.2f%% on %d images", 100 * result.top1, 100 * result.top5, result.num_images)
