"""RunContext: the run folder of one training run and everything written into it.

RUN/config.json     resolved RunConfig          RUN/split.json     the exact data split
RUN/metrics.jsonl   one JSON object per epoch   RUN/tensorboard/   TensorBoard scalars
RUN/checkpoints/    last.pt and best.pt         RUN/best.safetensors, RUN/last.safetensors
RUN/eval.json, RUN/samples.json, RUN/plots/     written after training

metrics.jsonl is rewritten atomically from the history every epoch, and the history is also
stored in each checkpoint, so after a kill (even kill -9) and --resume it is continuous.
Checkpoints and the best model are committed through the run's manifest (see .folder): last
first, then the best files, so a kill between them is repaired from last on resume (repair_best).

In a distributed run every process keeps the history (for best-epoch and early-stopping
decisions, which must agree) but only the main one (`world.is_main`) writes files or shows progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from alexnet_lab.core.bundle import ModelMeta, WeightBundle
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.train.folder import Manifest, check_best, fault_point
from alexnet_lab.train.launch_env import World
from alexnet_lab.train.tensorboard_log import ScalarWriter
from alexnet_lab.weights.formats.safetensors_io import write_safetensors

log = logging.getLogger(__name__)


class RunContext:
    def __init__(self, run_dir: Path, meta: ModelMeta, resume_checkpoint: Path | None, show_progress: bool | None = None,
                 *, world: World = World(), checkpoint_suffix: str):
        """`checkpoint_suffix`: the training framework's checkpoint ending (its registry entry)."""
        self.run_dir = run_dir
        self.checkpoint_suffix = checkpoint_suffix
        self.meta = meta
        self.resume_checkpoint = resume_checkpoint
        self.world = world  # which process of a distributed job this is; the backends train with it
        writer = self.writer = world.is_main
        self.history: list[dict] = []
        self.best = -1.0
        self.best_epoch = 0  # 1-based epoch of self.best; 0 before the first epoch
        self.show_progress = writer and (sys.stderr.isatty() if show_progress is None else show_progress)
        self._tb = None
        self.manifest: Manifest | None = None
        if writer:
            RunFolder(run_dir).checkpoints.mkdir(parents=True, exist_ok=True)
            self.manifest = Manifest(RunFolder(run_dir).checkpoints)
            self._tb = ScalarWriter(RunFolder(run_dir).tensorboard)

    def checkpoint_path(self, kind: str) -> Path:
        return RunFolder(self.run_dir).checkpoint(kind, self.checkpoint_suffix)

    @contextlib.contextmanager
    def progress(self, total: int, desc: str) -> Iterator:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="img", disable=not self.show_progress, leave=False, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()

    def restore(self, history: list[dict], best: float, best_epoch: int | None = None) -> None:
        """State from a checkpoint: history up to its epoch (later lines of a killed run are dropped).
        Checkpoints written before best_epoch was recorded get it from the history."""
        self.history, self.best = [dict(row) for row in history], float(best)
        if best_epoch is None:
            best_epoch = next((int(r["epoch"]) for r in self.history if float(r["val_top1"]) == self.best), 0)
        self.best_epoch = int(best_epoch)
        if self.writer:
            self._write_metrics()
            self._tb.purge_after(len(self.history))

    def record(self, row: Mapping) -> bool:
        """Add an epoch's metrics; True when val top-1 improved on the best so far."""
        self.history.append(dict(row))
        if row["val_top1"] > self.best:
            self.best, self.best_epoch = float(row["val_top1"]), int(row["epoch"])
            return True
        return False

    def commit(self, path: Path, write: Callable[[Path], None], epoch: int) -> Path:
        """Write a checkpoint file through the manifest (digest recorded, kill-safe); writer only."""
        return self.manifest.commit(path, write, epoch) if self.writer else path

    def commit_pair(self, last: Path, best: Path, write: Callable[[Path], None], epoch: int, improved: bool,
                    canonical: Callable[[], Mapping[str, np.ndarray]]) -> None:
        """Commit the epoch's last checkpoint, then, when it improved, the best checkpoint (a copy of
        last) and best.safetensors. Last goes first: it records the best epoch, so a kill before the
        best files are in place is repaired from it on resume (see repair_best)."""
        if not self.writer:
            return
        self.commit(last, write, epoch)
        if improved:
            self.commit(best, lambda tmp: shutil.copyfile(last, tmp), epoch)
            self.save_model(canonical(), "best", epoch)

    def verify_checkpoint(self, path: Path) -> None:
        """Check a checkpoint's bytes against the run's manifest before loading it."""
        if self.writer and self.manifest.exists:
            self.manifest.verify(path)

    def repair_best(self, last: Path, best: Path, last_epoch: int,
                    canonical: Callable[[], Mapping[str, np.ndarray]]) -> None:
        """On resume: re-derive best checkpoint / best.safetensors from the last checkpoint when a
        kill left them behind the best epoch that last records. Call after loading last's model."""
        if not self.writer:
            return
        for path in check_best(self.manifest, [best, RunFolder(self.run_dir).best_weights], self.best_epoch, last_epoch):
            log.warning("%s was behind the run's best epoch %d (interrupted write); re-deriving it from %s",
                        path.name, self.best_epoch, last.name)
            if path.suffix == ".safetensors":
                self.save_model(canonical(), "best", last_epoch)
            else:
                self.commit(path, lambda tmp: shutil.copyfile(last, tmp), last_epoch)

    def commit_epoch(self, row: Mapping) -> None:
        if not self.writer:
            return
        self._write_metrics()
        fault_point("metrics.jsonl:replaced", int(row["epoch"]))
        scalars = {f"{split}/{name}": row[f"{split}_{name}"] for split in ("train", "val") for name in ("loss", "top1")}
        self._tb.add_scalars(int(row["epoch"]), {**scalars, "val/top5": row["val_top5"], "lr": row["lr"]})
        log.info("epoch %d [%s]: train loss %.4f top-1 %.2f%% | val loss %.4f top-1 %.2f%% top-5 %.2f%% | %.0f s, %.0f img/s",
                 row["epoch"], row["phase"], row["train_loss"], 100 * row["train_top1"], row["val_loss"],
                 100 * row["val_top1"], 100 * row["val_top5"], row["epoch_seconds"], row["images_per_second"])

    def should_stop(self, patience: int) -> bool:
        if patience <= 0 or len(self.history) <= patience:
            return False
        best_epoch = max(range(len(self.history)), key=lambda i: self.history[i]["val_top1"])
        return len(self.history) - 1 - best_epoch >= patience

    def save_model(self, tensors: Mapping[str, np.ndarray], kind: str, epoch: int | None = None) -> Path:
        """Write RUN/<kind>.safetensors: canonical weights + metadata, usable by predict/evaluate/convert;
        with `epoch`, through the manifest. Only the writer writes; the others return the path."""
        path = RunFolder(self.run_dir).weights_file(kind)
        if not self.writer:
            return path
        bundle = WeightBundle(tensors, self.meta)
        if epoch is None:
            return write_safetensors(bundle, path)
        return self.commit(path, lambda tmp: write_safetensors(bundle, tmp), epoch)

    def _write_metrics(self) -> None:
        with atomic_path(RunFolder(self.run_dir).metrics) as tmp:
            tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in self.history))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
