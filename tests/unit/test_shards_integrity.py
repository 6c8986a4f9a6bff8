"""Shards with integrity: generated hostile tars (truncated anywhere, members without a .cls,
duplicate keys, non-image members, huge declared sizes) are read to the end with bounded memory,
warned about with counts, refused under --strict; `alexnet shards` writes a manifest that reading
checks, and refuses a non-empty output folder unless --force, which removes only earlier shards."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data import read_class_folder
from alexnet_lab.data.datasets import read_source
from alexnet_lab.data.shards import (
    DUPLICATE,
    IGNORED,
    ORPHAN,
    TRUNCATED,
    UNLABELLED,
    read_shard_index,
    write_shards,
)
from tests.conftest import run_cli

KINDS = ("pair", "image-only", "cls-only", "text", "dup-image", "dup-cls", "dir")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write_tar(path: Path, members: list[str]) -> dict[str, int]:
    """A shard of the given member kinds; returns the counts a complete read must report."""
    expected = {}

    def count(reason):
        expected[reason] = expected.get(reason, 0) + 1

    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, kind in enumerate(members):
            key = f"{i:04d}"
            if kind in ("pair", "image-only", "dup-image", "dup-cls"):
                _add(tar, f"{key}.jpg", b"\xff\xd8" + bytes(600))
            if kind in ("pair", "cls-only", "dup-image", "dup-cls"):
                _add(tar, f"{key}.cls", b"0")
            if kind == "dup-image":
                _add(tar, f"{key}.jpg", b"again")
            if kind == "dup-cls":
                _add(tar, f"{key}.cls", b"0")
            if kind == "text":
                _add(tar, f"{key}.txt", b"caption")
            if kind == "dir":
                info = tarfile.TarInfo(f"{key}")
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            count({"image-only": UNLABELLED, "cls-only": ORPHAN, "text": IGNORED, "dup-image": DUPLICATE,
                   "dup-cls": DUPLICATE}.get(kind, "ok"))
    (path.parent / "classes.txt").write_text("a\n")
    expected.pop("ok", None)
    return expected


@settings(max_examples=60, deadline=None)
@given(members=st.lists(st.sampled_from(KINDS), min_size=1, max_size=8), cut=st.one_of(st.none(), st.floats(0, 1)),
       huge=st.booleans())
def test_generated_tars_terminate_and_count_what_they_lose(members, cut, huge):
    with tempfile.TemporaryDirectory() as base:
        folder = Path(base)
        expected = _write_tar(folder / "s.tar", members)
        data = bytearray((folder / "s.tar").read_bytes())
        if huge:  # the first header declares 8 GB of data (base-256 size field), checksum fixed
            data[124:136] = b"\x80" + bytes(6) + b"\x02" + bytes(4)
            data[148:156] = b" " * 8
            data[148:156] = b"%06o\0 " % sum(data[:512])
        if cut is not None:
            data = data[: int(len(data) * cut)]
        (folder / "s.tar").write_bytes(bytes(data))
        tracemalloc.start()
        try:
            index = read_shard_index(folder)
        except UserInputError as exc:  # nothing readable, or not a tar at all
            assert "pairs" in str(exc) or "cannot read shard" in str(exc)
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < 8 * 2**20
        if cut is None and not huge:
            assert index.report.counts == expected
        kept = sum(members.count(kind) for kind in ("pair", "dup-image", "dup-cls"))  # a duplicate keeps the first
        assert len(index) == kept if cut is None and not huge else len(index) <= kept
        losses = {r for r in index.report.counts if r not in (IGNORED,)}
        assert index.report.losses == losses
        if losses:
            with pytest.raises(UserInputError, match="--strict"):
                index.check_complete(strict=True)
        index.check_complete(strict=False)


def test_truncation_at_a_member_boundary_is_still_seen(tmp_path):
    _write_tar(tmp_path / "s.tar", ["pair", "pair", "pair"])
    data = (tmp_path / "s.tar").read_bytes()
    (tmp_path / "s.tar").write_bytes(data[: 512 * 5])  # one whole pair: tarfile alone stops quietly here
    index = read_shard_index(tmp_path)
    assert len(index) == 1 and index.report.counts == {TRUNCATED: 1}


@pytest.fixture
def classes(tmp_path) -> Path:
    for i in range(6):
        (tmp_path / "in" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / "in" / f"c{i % 2}" / f"{i}.png")
    return tmp_path / "in"


def test_shards_refuse_a_non_empty_folder_and_force_removes_only_old_shards(classes, tmp_path):
    out = tmp_path / "out"
    assert run_cli("shards", str(classes), str(out), "--per-shard", "2").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["total"] == 6 and [s["samples"] for s in manifest["shards"]] == [2, 2, 2]
    assert manifest["class_names"] == ["c0", "c1"]
    (out / "notes.txt").write_text("mine")
    refused = run_cli("shards", str(classes), str(out), "--per-shard", "3")
    assert refused.returncode != 0 and "--force" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    forced = run_cli("shards", str(classes), str(out), "--per-shard", "3", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "manifest.json", "notes.txt", "shard-000000.tar",
                                                     "shard-000001.tar"]
    assert (out / "notes.txt").read_text() == "mine" and len(read_source(str(out))["all"]) == 6
    inside = run_cli("shards", str(classes), str(classes / "shards"))
    assert inside.returncode != 0 and "inside the input" in inside.stderr


@pytest.mark.parametrize("damage", ["flip", "missing", "extra", "classes", "count", "escape"])
def test_a_manifest_mismatch_is_one_line_error(classes, tmp_path, damage):
    out = tmp_path / "out"
    write_shards(read_class_folder(classes), out, per_shard=4)
    shard = out / "shard-000000.tar"
    if damage == "flip":
        data = bytearray(shard.read_bytes())
        data[700] ^= 1
        shard.write_bytes(bytes(data))
    elif damage == "missing":
        (out / "shard-000001.tar").unlink()
    elif damage == "extra":
        (out / "old.tar").write_bytes(shard.read_bytes())
    elif damage == "classes":
        (out / "classes.txt").write_text("c1\nc0\n")
    elif damage == "count":
        doc = json.loads((out / "manifest.json").read_text())
        doc["shards"][0]["samples"] += 1
        (out / "manifest.json").write_text(json.dumps(doc))
    else:  # a manifest that would make --force remove a file outside the folder
        doc = json.loads((out / "manifest.json").read_text())
        doc["shards"][0]["file"] = "../notes.tar"
        (out / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(UserInputError, match="manifest|class names"):
        read_source(str(out))


def test_strict_refuses_shards_that_lost_samples(tmp_path):
    from alexnet_lab.data.walk import SkipReport

    _write_tar(tmp_path / "s.tar", ["pair", "image-only", "pair"])
    index = read_shard_index(tmp_path)
    assert isinstance(index.report, SkipReport) and index.report.counts == {UNLABELLED: 1}
    with pytest.raises(UserInputError, match="1 image\\(s\\) without a .cls label"):
        index.check_complete(strict=True)
