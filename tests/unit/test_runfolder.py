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
