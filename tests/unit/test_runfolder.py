"""Run-folder bookkeeping without training: the checkpoint manifest and the best-file check."""

from __future__ import annotations

from pathlib import Path

import pytest

from alexnet_lab.train.folder import Manifest, check_best


def _commit(manifest: Manifest, path: Path, text: str, epoch: int) -> None:
    manifest.commit(path, lambda tmp: tmp.write_text(text), epoch)


def test_a_best_file_from_before_manifests_is_left_alone(tmp_path):
    """A run folder made before manifests, resumed once (the manifest now lists only last.pt),
    resumes again: its unrecorded best file is not checked against a record it never had."""
    (tmp_path / "best.pt").write_text("epoch 1, written before manifests")
    manifest = Manifest(tmp_path)
    _commit(manifest, tmp_path / "last.pt", "epoch 3", 3)
    assert check_best(Manifest(tmp_path), [tmp_path / "best.pt"], best_epoch=1, last_epoch=3) == []


def test_a_recorded_best_file_behind_the_record_is_stale_only_at_the_last_epoch(tmp_path):
    manifest = Manifest(tmp_path)
    _commit(manifest, tmp_path / "best.pt", "epoch 2", 2)
    _commit(manifest, tmp_path / "last.pt", "epoch 3", 3)
    assert check_best(Manifest(tmp_path), [tmp_path / "best.pt"], best_epoch=3, last_epoch=3) == [tmp_path / "best.pt"]
    assert check_best(Manifest(tmp_path), [tmp_path / "best.pt"], best_epoch=2, last_epoch=3) == []
    with pytest.raises(Exception, match="holds epoch 2"):
        check_best(Manifest(tmp_path), [tmp_path / "best.pt"], best_epoch=1, last_epoch=3)


def test_a_landed_checkpoint_that_is_gone_is_refused_a_first_one_that_never_landed_is_not(tmp_path):
    from alexnet_lab.train.folder import CheckpointCorrupt

    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    manifest = Manifest(tmp_path)
    _commit(manifest, last, "epoch 1", 1)
    last.unlink()  # as a kill between the first record and its rename leaves it
    Manifest(tmp_path).check_not_lost(last)  # a fresh start is then the uninterrupted run
    _commit(manifest, last, "epoch 1, the restart", 1)
    assert manifest.entries["last.pt"]["previous"] is None  # the record of a file that never landed is no previous
    last.unlink()  # the restart's first commit cut short the same way
    Manifest(tmp_path).check_not_lost(last)
    _commit(manifest, last, "epoch 1", 1)
    _commit(manifest, best, "epoch 1", 1)  # the best checkpoint follows a landed last one
    last.unlink()
    with pytest.raises(CheckpointCorrupt, match="is missing, though .* records it at epoch 1"):
        Manifest(tmp_path).check_not_lost(last)
    for kept, epochs in ((tmp_path / "a", [2]), (tmp_path / "b", [1, 1])):  # past the first epoch; a previous record
        kept.mkdir()
        for epoch in epochs:
            _commit(Manifest(kept), kept / "last.pt", f"epoch {epoch}", epoch)
        (kept / "last.pt").unlink()
        with pytest.raises(CheckpointCorrupt, match="is missing"):
            Manifest(kept).check_not_lost(kept / "last.pt")


# Files that still write a run folder's file name as a string of their own, and why.
RUN_FILE_NAME_ALLOWED = {
    "core/run_folder.py": "the home",
    "weights/formats/limits.py": "'config.json' inside a .keras archive, not a run's",
    "weights/hub_folder.py": "'config.json' of a Hub folder, not a run's",
    "train/keras/checkpoint.py": "'checkpoints': the training developer's file (#30: RunFolder(run_dir).checkpoints)",
}


def test_a_run_folders_paths_come_from_one_place():
    from alexnet_lab.core.run_folder import RunFolder

    run = RunFolder("runs/a")
    assert run.config == Path("runs/a/config.json") and run.plot("curves") == Path("runs/a/plots/curves.png")
    assert RunFolder.REQUIRED == ("config.json", "metrics.jsonl", "eval.json")
    assert RunFolder.WEIGHTS == (RunFolder.BEST_WEIGHTS, RunFolder.LAST_WEIGHTS)


def test_weights_of_a_run_folder_best_first(tmp_path):
    from alexnet_lab.core.run_folder import RunFolder

    run = RunFolder(tmp_path)
    assert run.weights() == []
    run.last_weights.write_bytes(b"")
    run.best_weights.write_bytes(b"")
    assert run.weights() == [run.best_weights, run.last_weights]


def test_no_run_file_name_written_twice():
    import ast

    from alexnet_lab.core.run_folder import RunFolder

    package = Path(__file__).resolve().parents[2] / "src" / "alexnet_lab"
    names = {value for key, value in vars(RunFolder).items() if key.isupper() and isinstance(value, str)}
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel in RUN_FILE_NAME_ALLOWED:
            continue
        found += [f"{rel}:{node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Constant) and node.value in names]
    assert not found, "a run folder's file names outside core/run_folder.py (ask RunFolder):\n" + "\n".join(found)
