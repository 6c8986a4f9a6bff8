"""stratified_split determinism and stratification; save_split / load_split round trips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data import (
    DatasetIndex,
    Sample,
    load_split,
    read_class_folder,
    save_split,
    split_counts,
    stratified_split,
)

CLASS_SIZES = {"cat": 50, "dog": 23, "owl": 7, "yak": 3, "emu": 1}


def _index(order: str = "sorted", root: str | None = "/data") -> DatasetIndex:
    names = tuple(sorted(CLASS_SIZES))
    samples = [
        Sample(f"/data/{name}/{i:03d}.png", names.index(name))
        for name, count in CLASS_SIZES.items()
        for i in range(count)
    ]
    if order == "reversed":
        samples.reverse()
    elif order == "interleaved":
        samples = samples[::2] + samples[1::2]
    return DatasetIndex(tuple(samples), names, root)


def _as_sets(splits: dict[str, DatasetIndex]) -> dict[str, set[Sample]]:
    return {name: set(index.samples) for name, index in splits.items()}


def test_same_seed_same_split_whatever_the_input_order() -> None:
    reference = stratified_split(_index(), seed=3)
    for order in ("reversed", "interleaved"):
        again = stratified_split(_index(order), seed=3)
        assert {k: v.samples for k, v in again.items()} == {k: v.samples for k, v in reference.items()}
    assert _as_sets(stratified_split(_index(), seed=4)) != _as_sets(reference)


def test_split_is_a_partition_with_ratios_per_class_within_one() -> None:
    ratios = {"train": 0.7, "val": 0.2, "test": 0.1}
    index = _index()
    splits = stratified_split(index, ratios, seed=0)
    assert list(splits) == ["train", "val", "test"]
    union = [s for part in splits.values() for s in part.samples]
    assert len(union) == len(index) and set(union) == set(index.samples)
    for class_name, total in CLASS_SIZES.items():
        for split_name, ratio in ratios.items():
            count = splits[split_name].class_counts()[class_name]
            if total * min(ratios.values()) >= 1:
                assert abs(count - total * ratio) < 1, (class_name, split_name)
            if total >= len(ratios):
                assert count >= 1  # presence beats the ratio for tiny classes (yak: 1/1/1)
    assert splits["train"].class_names == index.class_names and splits["val"].root == "/data"


def test_default_ratios_are_within_one_sample_for_every_class() -> None:
    splits = stratified_split(_index(), seed=5)
    assert list(splits) == ["train", "val"]
    for class_name, total in CLASS_SIZES.items():
        assert abs(splits["train"].class_counts()[class_name] - 0.9 * total) < 1
        assert abs(splits["val"].class_counts()[class_name] - 0.1 * total) < 1


def test_small_classes_still_reach_every_split() -> None:
    counts = split_counts(3, {"train": 0.9, "val": 0.1})
    assert counts == {"train": 2, "val": 1}
    assert split_counts(1, {"train": 0.9, "val": 0.1}) == {"train": 1, "val": 0}
    assert split_counts(10, {"a": 0.34, "b": 0.33, "c": 0.33}) == {"a": 4, "b": 3, "c": 3}
    assert sum(split_counts(1000, {"train": 0.9, "val": 0.1}).values()) == 1000


def test_a_class_split_does_not_depend_on_other_classes() -> None:
    full = stratified_split(_index(), seed=1)
    fewer_classes = _index()
    cats_only = DatasetIndex(
        tuple(s for s in fewer_classes.samples if fewer_classes.class_names[s.label] == "cat"),
        fewer_classes.class_names,
    )
    cats = stratified_split(cats_only, seed=1)
    cat = fewer_classes.class_names.index("cat")
    assert {s for s in full["val"].samples if s.label == cat} == set(cats["val"].samples)


@pytest.mark.parametrize(
    "ratios, match",
    [
        ({}, "expected split ratios"),
        ({"train": 0.9, "val": 0.2}, "sum to 1"),
        ({"train": 1.0, "val": 0.0}, r"\(0, 1\]"),
    ],
)
def test_bad_ratios_are_rejected(ratios: dict[str, float], match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        stratified_split(_index(), ratios)


def _folder(root: Path) -> DatasetIndex:
    for name, count in (("a", 6), ("b", 4)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            shutil.copyfile(Path(__file__), root / name / f"{i}.png")  # content is never read
    return read_class_folder(root)


def test_save_and_load_round_trip_with_relative_paths(tmp_path: Path) -> None:
    index = _folder(tmp_path / "data")
    splits = stratified_split(index, {"train": 0.5, "val": 0.5}, seed=7)
    written = save_split(splits, tmp_path / "run" / "split.json")
    document = json.loads(written.read_text())
    assert document["class_names"] == ["a", "b"] and document["root"] == str(tmp_path / "data")
    assert all(not Path(p).is_absolute() for rows in document["splits"].values() for p, _ in rows)
    assert load_split(written) == splits
    assert not list((tmp_path / "run").glob(".*.tmp"))  # atomic write left no temporary file


def test_load_with_moved_root_and_missing_files(tmp_path: Path) -> None:
    index = _folder(tmp_path / "data")
    splits = stratified_split(index, seed=0)
    written = save_split(splits, tmp_path / "split.json")
    (tmp_path / "data").rename(tmp_path / "moved")
    with pytest.raises(UserInputError, match="do not exist.*pass root="):
        load_split(written)
    moved = load_split(written, root=tmp_path / "moved")
    assert [len(v) for v in moved.values()] == [len(v) for v in splits.values()]
    assert all(Path(p).exists() for v in moved.values() for p in v.paths)
    assert load_split(written, check_exists=False)["train"].root == str(tmp_path / "data")


def test_paths_outside_the_root_stay_absolute(tmp_path: Path) -> None:
    index = DatasetIndex((Sample("/elsewhere/x.png", 0), Sample(str(tmp_path / "y.png"), 0)), ("a",), str(tmp_path))
    written = save_split({"all": index}, tmp_path / "s.json")
    rows = json.loads(written.read_text())["splits"]["all"]
    assert rows == [["/elsewhere/x.png", 0], ["y.png", 0]]


def test_foreign_damaged_and_inconsistent_files_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match="cannot parse"):
        load_split(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UserInputError, match="format 'alexnet-lab-split'"):
        load_split(bad)
    damaged = {"format": "alexnet-lab-split", "version": 1, "class_names": ["a"], "splits": {"t": [[1]]}}
    bad.write_text(json.dumps(damaged))
    with pytest.raises(UserInputError, match="damaged"):
        load_split(bad, check_exists=False)
    with pytest.raises(UserInputError, match="does not exist"):
        load_split(tmp_path / "none.json")
    one = DatasetIndex((), ("a",))
    other = DatasetIndex((), ("b",))
    with pytest.raises(UserInputError, match="share one class list"):
        save_split({"train": one, "val": other}, tmp_path / "x.json")
