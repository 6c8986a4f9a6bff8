"""Run a training job end to end, framework-neutrally: resolve the data and preprocessing, set up
the run folder, hand over to the framework's loop, then evaluate the best model and plot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_lab.core.bundle import ModelMeta
from alexnet_lab.core.errors import TrainingError, UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.preprocessing import CIFAR_32, PreprocessSpec
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.core.softmax import softmax
from alexnet_lab.core.spec import get_arch
from alexnet_lab.data import load_split, save_split
from alexnet_lab.data.datasets import AUGMENTS, DataSplits, normalisation, resolve_data
from alexnet_lab.frameworks.registry import ENTRIES
from alexnet_lab.train.config import RunConfig, supports
from alexnet_lab.train.context import RunContext
from alexnet_lab.train.folder import Manifest, check_run_output, fault_point, storage_error
from alexnet_lab.train.image_stores import make_stores
from alexnet_lab.train.launch_env import World, current_world
from alexnet_lab.train.lock import locked_run_folder
from alexnet_lab.train.phases import plan_phases
from alexnet_lab.train.resume import config_document, resume_config
from alexnet_lab.train.trainer_registry import get_trainer
from alexnet_lab.weights.registry import default_preprocess

log = logging.getLogger(__name__)


def __getattr__(name: str):
    if name == "CIFAR_PREPROCESS":  # its old name here, kept for a release: the one definition is core.preprocessing's
        import warnings

        warnings.warn("alexnet_lab.train.job.CIFAR_PREPROCESS moved to alexnet_lab.core.preprocessing.CIFAR_32",
                      DeprecationWarning, stacklevel=2)
        return CIFAR_32
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def scratch_preprocess(variant: str, input_size: int) -> PreprocessSpec:
    """Preprocessing for a model trained from scratch: the variant's usual one (the weights
    table's default_preprocess), at `input_size` when one is given."""
    base = default_preprocess(variant)
    if input_size and input_size != base.crop:
        resize = input_size if base.resize == base.crop else round(input_size * base.resize / base.crop)
        base = replace(base, resize=resize, crop=input_size)
    return base


def _preflight(config: RunConfig, bundle) -> tuple[str, PreprocessSpec]:
    """(variant, preprocessing), after checking what would otherwise fail only once the model is
    built: the variant, the input size, the layer names and --unfreeze. Nothing is written yet."""
    variant = bundle.meta.variant if bundle is not None else config.variant
    arch = get_arch(variant)
    spec = bundle.meta.preprocess if bundle is not None else scratch_preprocess(variant, config.input_size)
    arch.check_input_size(spec.crop)
    plan_phases(config, arch, tuple(config.skip_layers))
    return variant, spec


def _splits(config: RunConfig, run_dir: Path) -> DataSplits:
    """The data split: for --resume of a folder data set, the one saved in the run (read only)."""
    split_file = RunFolder(run_dir).split
    # synthetic and cifar10 samples are virtual paths, listed again exactly from the seed
    if config.resume and split_file.is_file() and config.data not in ("synthetic", "cifar10"):
        found = load_split(split_file)
        names = found["train"].class_names
        return DataSplits(found, names, f"{config.data} (split from {split_file})")
    return resolve_data(config.data, data_dir=config.data_dir, val_data=config.val_data, val_ratio=config.val_ratio,
                        test_ratio=config.test_ratio, seed=config.seed, synthetic_per_class=config.synthetic_per_class,
                        limit_per_class=config.limit_per_class)


def run_training(config: RunConfig, given: Mapping[str, Any] | None = None) -> Path | None:
    """Train as configured; returns the run folder, or None in the processes of a distributed run
    that do not write it (all but rank 0 / the chief).

    Everything is validated before the run folder is touched; the folder is locked for the run's
    lifetime, and a fresh start that fails before its first checkpoint leaves no trace.

    Args:
        config: the run. With resume=True only `out` is used: the run's own config.json decides.
        given: with resume, the flags passed explicitly (field -> value); each must match the
            run's config, except a larger `epochs`, which extends the run.
    """
    from alexnet_lab.weights.files import load_weights

    extension = None
    if config.resume:  # before anything imports a framework: the run's config.json names it
        config, extension = resume_config(config, given)
    check_run_output(config)  # the output policy, before any data or weights are read
    world = current_world(config.distribute)
    if not world.is_main:  # one log for a distributed job, from rank 0
        logging.getLogger("alexnet_lab").setLevel(logging.WARNING)
    if world.distributed and not supports(config.framework, "torchrun") and config.distribute == "none":
        raise UserInputError(f"torchrun starts PyTorch training only (this run is --framework {config.framework}); "
                             "for Keras use --distribute mirrored or multi-worker in a single process per machine.")
    if supports(config.framework, "torchrun"):  # one process per device: the batch is split
        world.split_batch(config.batch_size)  # checked before the data is decoded
    if not config.resume and world.is_main and RunFolder(config.out).config.exists():
        # at once, before weights or data are read (checked again under the run lock)
        raise TrainingError(f"run folder '{config.out}' already holds a run; pass --resume to continue it or a new "
                            "--out.")
    bundle = load_weights(config.weights) if config.weights != "none" else None
    variant, spec = _preflight(config, bundle)
    run_dir = Path(config.out)
    data = _splits(config, run_dir)
    trainer = get_trainer(config.framework)
    config = replace(config, variant=variant)
    try:
        with locked_run_folder(run_dir, fresh=not config.resume, writer=world.is_main):
            _train_in_folder(config, extension, trainer, bundle, data, spec, world)
    except OSError as exc:
        error = storage_error(exc, run_dir, resumable=RunFolder(run_dir).has_last_checkpoint())
        if error is None:
            raise
        raise error from None
    return run_dir if world.is_main else None


def _train_in_folder(config: RunConfig, extension: dict | None, trainer, bundle, data: DataSplits,
                     spec: PreprocessSpec, world: World) -> None:
    """The run itself, with the folder locked: config and split first, then train and finish."""
    run_dir = Path(config.out)
    suffix = ENTRIES[config.framework].checkpoint_suffix
    last = RunFolder(run_dir).checkpoint("last", suffix)
    if config.resume:
        Manifest(last.parent).check_not_lost(last)
    checkpoint = last if config.resume and last.is_file() else None
    meta = ModelMeta(config.variant, data.class_names, spec, source=f"run {run_dir.name}", input_size=spec.crop)
    log.info("data: %s", data.description)
    if world.is_main:
        save_split(data.splits, RunFolder(run_dir).split)
    ctx = RunContext(run_dir, meta, checkpoint, world=world, checkpoint_suffix=suffix)
    try:
        stores, mode = make_stores(ctx, data, spec, config)
        if world.is_main:
            with atomic_path(RunFolder(run_dir).config) as tmp:
                tmp.write_text(config_document(run_dir, config, extension))
            fault_point("config.json:replaced", 0)
        resolved = trainer.train_run(config, ctx, stores, bundle, AUGMENTS[config.augment], normalisation(spec))
        resolved["data_mode"] = mode
        if world.is_main:  # the others have finished their share once training ends
            _write_resolved(run_dir, resolved, meta.arch.param_count(meta.num_classes))
            finish_run(run_dir, config, stores["val"], stores["val_paths"])
    finally:
        ctx.close()


def _write_resolved(run_dir: Path, resolved: dict, params: int) -> None:
    """Add what was decided at run time (device, precision, ...) and the model size to config.json."""
    data = json.loads(RunFolder(run_dir).config.read_text())
    data["resolved"], data["params"] = resolved, params
    with atomic_path(RunFolder(run_dir).config) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))


def finish_run(run_dir: Path, config: RunConfig, val_store, val_paths: list[str], samples: int = 32) -> None:
    """Evaluate the best model on the validation store (each image and its mirror averaged with
    --eval-flip, as `evaluate --crops 2`); write eval.json, samples.json and plots."""
    from alexnet_lab.evaluate import ensure_plots, evaluate_logits, load_run, plot_samples, write_eval_json
    from alexnet_lab.evaluate.dataset_eval import logits_for_store
    from alexnet_lab.weights.files import load_weights

    bundle = load_weights(RunFolder(run_dir).best_weights)
    images, labels = val_store
    logits = logits_for_store(bundle, images, config.framework, device=config.device, crops=2 if config.eval_flip else 1)
    result = evaluate_logits(logits, labels, bundle.meta.categories)
    write_eval_json(result, RunFolder(run_dir).eval)
    probs = softmax(logits)
    pick = np.random.default_rng(0).permutation(len(labels))[:samples]
    doc = {"class_names": list(bundle.meta.categories),
           "samples": [{"path": val_paths[i], "true": int(labels[i]), "pred": int(probs[i].argmax()),
                        "prob": float(probs[i].max())} for i in pick]}
    with atomic_path(RunFolder(run_dir).samples) as tmp:
        tmp.write_text(json.dumps(doc))
    plot_samples(list(images[pick]), labels[pick].tolist(), probs[pick].argmax(1).tolist(), probs[pick].max(1).tolist(),
                 bundle.meta.categories, RunFolder(run_dir).plot("samples"))
    ensure_plots(load_run(run_dir))
    log.info("best model: val top-1 %.2f%%, top-5 %.2f%% on %d images", 100 * result.top1, 100 * result.top5, result.num_images)
