"""The one folder walker (data/walk.py) on generated trees with links to `.`, `..`, a sibling class,
outside the root, link chains that loop, dangling links, repeated files, empty classes and odd
names: the walk ends, every real image appears once with its own class, and the skip counts are
exactly the links that were left out."""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data import read_class_folder, read_folder_splits
from alexnet_lab.data.images import is_image_path
from alexnet_lab.data.walk import DANGLING, LOOP, OUTSIDE, REPEAT, SPECIAL, FolderWalk, list_files

NAMES = ["cat", "a b", "ünïcode", "new\nline", "z-9", "_"]
# kind of link -> the reason the walk must give for leaving it out
IN_CLASS_LINKS = {"dot": LOOP, "dotdot": OUTSIDE, "sibling": OUTSIDE, "outside": OUTSIDE, "dangling": DANGLING,
                  "chain": DANGLING, "own-file": REPEAT, "sibling-file": OUTSIDE, "own-subdir": REPEAT,
                  "subdir-to-parent": LOOP}
ROOT_LINKS = {"root-dot": LOOP, "root-to-class": REPEAT, "root-outside": OUTSIDE, "root-parent": LOOP}

tree = st.fixed_dictionaries({
    "classes": st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True),
    "images": st.lists(st.integers(0, 3), min_size=3, max_size=3),
    "nested": st.booleans(),
    "links": st.lists(st.tuples(st.integers(0, 2), st.sampled_from(sorted(IN_CLASS_LINKS))), max_size=5),
    "root_links": st.lists(st.sampled_from(sorted(ROOT_LINKS)), max_size=2, unique=True),
    "hidden": st.booleans(),
})


def _build(base: Path, spec: dict) -> tuple[Path, dict[str, set[str]], Counter]:
    """The tree, {class: real image paths}, and the skip counts the walk must report."""
    root, outside = base / "data", base / "elsewhere"
    outside.mkdir()
    (outside / "stray.png").write_bytes(b"x")
    classes = spec["classes"]
    real: dict[str, set[str]] = {}
    for position, name in enumerate(classes):
        folder = root / name / ("deep" if spec["nested"] else "")
        folder.mkdir(parents=True)
        real[name] = set()
        for i in range(spec["images"][position]):
            (folder / f"img {i}.png").write_bytes(b"%d" % i)
            real[name].add(os.path.realpath(folder / f"img {i}.png"))
        if spec["hidden"]:  # leading dots: never walked, never counted
            (root / name / ".hidden.png").write_bytes(b"h")
            (root / name / ".cache").mkdir()
            (root / name / ".cache" / "x.png").write_bytes(b"h")
    if spec["hidden"]:
        (root / ".ipynb_checkpoints").mkdir()
        (root / ".ipynb_checkpoints" / "y.png").write_bytes(b"h")
    expected: Counter = Counter()
    for number, (which, kind) in enumerate(spec["links"]):
        name = classes[which % len(classes)]
        other = classes[(which + 1) % len(classes)]
        here = root / name
        target = {"dot": ".", "dotdot": "..", "sibling": f"../{other}", "outside": str(outside),
                  "dangling": "missing", "chain": f"chain{number}b",
                  "own-file": next(iter(sorted(real[name])), None),
                  "sibling-file": next(iter(sorted(real[other])), None) if other != name else None,
                  "own-subdir": "deep" if spec["nested"] else None,
                  "subdir-to-parent": ".." if spec["nested"] else None}[kind]
        if target is None:
            continue
        link = here / ("deep" if kind == "subdir-to-parent" else "") / f"link{number}{'.png' if 'file' in kind else ''}"
        if kind == "chain":  # two links pointing at each other: both are broken
            (here / f"chain{number}b").symlink_to(link.name)
            expected[DANGLING] += 1
        link.symlink_to(target)
        expected[LOOP if kind == "sibling" and other == name else IN_CLASS_LINKS[kind]] += 1  # ../own-name is '.'
    for kind in spec["root_links"]:
        target = {"root-dot": ".", "root-to-class": classes[0], "root-outside": str(outside),
                  "root-parent": ".."}[kind]
        (root / f"zz-{kind}").symlink_to(target)
        expected[ROOT_LINKS[kind]] += 1
    return root, real, expected


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=tree)
def test_generated_trees_walk_once_each_image_with_its_own_class(spec):
    with tempfile.TemporaryDirectory() as base:
        root, real, expected = _build(Path(base), spec)
        empty = [name for name, files in real.items() if not files]
        if empty:
            with pytest.raises(UserInputError, match="without any"):
                read_class_folder(root)
            return
        index = read_class_folder(root)
        assert sorted(index.class_names) == sorted(real)
        got = Counter((index.class_names[s.label], os.path.realpath(s.path)) for s in index.samples)
        assert max(got.values()) == 1  # no image twice
        assert {p for _, p in got} == set().union(*real.values())  # every real image
        assert all(path in real[name] for name, path in got)  # each with its own class
        assert Counter(index.report.counts) == expected


def test_loops_are_reported_once_with_counts(tmp_path, caplog):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.png").write_bytes(b"x")
    (tmp_path / "cat" / "again").symlink_to(".")
    (tmp_path / "cat" / "up").symlink_to("..")
    with caplog.at_level(logging.WARNING):
        index = read_folder_splits(tmp_path)["all"]
    assert len(index) == 1
    assert [r.message.count("left out") for r in caplog.records] == [1]
    assert "1 link(s) back to a folder they are in" in caplog.text and "1 link(s) leading out" in caplog.text


def test_a_link_between_splits_cannot_make_train_and_val_overlap(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
        (tmp_path / split / "cat" / f"{split}.png").write_bytes(split.encode())
    (tmp_path / "val" / "cat" / "borrowed").symlink_to(tmp_path / "train" / "cat")
    os.link(tmp_path / "train" / "cat" / "train.png", tmp_path / "val" / "cat" / "hard.png")
    splits = read_folder_splits(tmp_path)
    assert [Path(p).name for p in splits["val"].paths] == ["val.png"]
    assert splits["val"].report.counts == {OUTSIDE: 1, REPEAT: 1}


def test_flat_listing_skips_fifos_and_outside_links(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"x")
    os.mkfifo(tmp_path / "in" / "pipe.jpg")
    (tmp_path / "out.jpg").write_bytes(b"y")
    (tmp_path / "in" / "b.jpg").symlink_to(tmp_path / "out.jpg")
    (tmp_path / "in" / "sub").mkdir()
    (tmp_path / "in" / "sub" / "c.jpg").write_bytes(b"z")
    walk = FolderWalk()
    assert [Path(p).name for p in walk.files(tmp_path / "in", is_image_path, recursive=False)] == ["a.jpg"]
    assert walk.report.counts == {SPECIAL: 1, OUTSIDE: 1}
    assert [Path(p).name for p in list_files(tmp_path / "in", is_image_path)] == ["a.jpg", "c.jpg"]


def test_walk_order_is_os_walk_order_and_real_routes_win(tmp_path):
    for rel in ("b.png", "a/x.png", "a/c/y.png", "d/z.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    by_os_walk = [os.path.join(d, f) for d, dirs, files in os.walk(tmp_path) if not dirs.sort() for f in sorted(files)]
    assert FolderWalk().files(tmp_path, is_image_path) == by_os_walk
    (tmp_path / "0-link").symlink_to("d")  # sorts before the real folder, still the real one is taken
    walk = FolderWalk()
    found = [os.path.relpath(p, tmp_path) for p in walk.files(tmp_path, is_image_path)]
    assert found == ["b.png", "a/x.png", "a/c/y.png", "d/z.png"]
    assert walk.report.counts == {REPEAT: 1} and walk.report.examples[REPEAT].endswith("0-link")
