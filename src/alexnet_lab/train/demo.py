"""`alexnet demo`: the main job on embedded data, no download needed.

1. trains the 32x32 'cifar' AlexNet from scratch on the synthetic shapes data set (recipe
   synthetic-demo), with a run folder like any other run;
2. evaluates the best model on held-out synthetic images (another seed);
3. writes the Markdown + HTML report;
4. predicts a few held-out images with PyTorch and with Keras from the same trained file.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.evaluate.report_seeds import HELD_OUT_NAME  # the held-out figures' one file name

log = logging.getLogger(__name__)

REPORT_NAME = "report"


def run_demo(out_dir: Path, epochs: int | None = None, force: bool = False) -> dict:
    """Run the demo into out_dir; returns its figures.

    The configuration is checked before anything is touched. A folder that already holds a demo
    is refused unless `force`, which then replaces the demo's own files, nothing else in the folder
    (never while another process trains in it).
    """
    from alexnet_lab.evaluate import write_eval_json, write_report
    from alexnet_lab.evaluate.dataset_eval import evaluate_source
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.job import run_training
    from alexnet_lab.train.recipes import get_recipe

    run_dir = out_dir / "run"
    config = RunConfig(**get_recipe("synthetic-demo").as_dict(), out=str(run_dir), recipe="synthetic-demo")
    if epochs is not None:
        config = replace(config, epochs=epochs)  # validated again: --epochs 0 fails here, before any change
    _clear_previous(out_dir, run_dir, force)
    run_training(config)
    held_out, _ = evaluate_source(str(run_dir), "synthetic", config.framework, seed=1)
    write_eval_json(held_out, out_dir / HELD_OUT_NAME)
    md_path, html_path = write_report([run_dir], out_dir / REPORT_NAME)
    agreement = _framework_agreement(run_dir)
    return {"run_dir": run_dir, "held_out_top1": held_out.top1, "held_out_images": held_out.num_images,
            "report_md": md_path, "report_html": html_path, **agreement}


def _clear_previous(out_dir: Path, run_dir: Path, force: bool) -> None:
    """Refuse an earlier demo in out_dir (the output policy, core.fileio.check_output), or with
    `force` remove its files only, holding its run's lock so that a demo still training there is
    not deleted under it. Other files in out_dir are left alone."""
    from alexnet_lab.core.fileio import check_output
    from alexnet_lab.train.lock import RunLock

    previous = check_output(out_dir, force=force, kind="folder", owned=(f"{run_dir.name}/", HELD_OUT_NAME,
                                                                        f"{REPORT_NAME}/"))
    if not previous:
        return
    if run_dir.is_dir():
        lock = RunLock(run_dir)
        lock.acquire()  # busy: one line naming the process that trains there
        try:
            shutil.rmtree(run_dir)
        finally:
            lock.release()
    for path in previous:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log.info("--force: removed the earlier demo in %s", out_dir)


def _framework_agreement(run_dir: Path, count: int = 16) -> dict:
    """Top-1 agreement and max probability difference between PyTorch and Keras on held-out images
    (each framework in a process of its own, as verify's framework-parity check runs them)."""
    from alexnet_lab.core.preprocessing import preprocess_batch
    from alexnet_lab.core.softmax import softmax
    from alexnet_lab.data import SyntheticSpec, make_synthetic
    from alexnet_lab.frameworks import FRAMEWORKS
    from alexnet_lab.verify.parity import framework_logits
    from alexnet_lab.weights.files import load_weights

    bundle = load_weights(RunFolder(run_dir).best_weights)
    images, _ = make_synthetic(SyntheticSpec(num_classes=10, size=32, per_class=max(1, count // 10), seed=2))
    batch = preprocess_batch(list(images), bundle.meta.preprocess)
    first, second = (softmax(framework_logits(bundle, {"images": batch}, fw)[0]["images"]) for fw in FRAMEWORKS)
    return {"framework_top1_agree": float((first.argmax(1) == second.argmax(1)).mean()),
            "framework_max_prob_diff": float(np.abs(first - second).max())}
