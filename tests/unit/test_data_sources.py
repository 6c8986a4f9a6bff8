"""Folder and list-file readers, DatasetIndex helpers, align_to by name, scan_corrupt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.data import (
    ALL_SPLIT,
    DatasetIndex,
    ImageReadError,
    Sample,
    align_to,
    read_class_folder,
    read_folder_splits,
    read_list_file,
    scan_corrupt,
)


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(path)
    return path


def _tree(root: Path, layout: dict[str, int]) -> Path:
    for class_name, count in layout.items():
        for i in range(count):
            _png(root / class_name / f"{i:03d}.png", i)
    return root


def test_class_folders_sorted_by_name_and_recursive(tmp_path: Path) -> None:
    _tree(tmp_path, {"zebra": 2, "ant": 1, "Cat": 3})
    _png(tmp_path / "ant" / "nested" / "deep.png")
    (tmp_path / "ant" / "readme.txt").write_text("not an image")
    (tmp_path / "ant" / ".hidden.png").write_bytes(b"")
    _png(tmp_path / ".ipynb_checkpoints" / "x.png")  # hidden folders are not classes
    index = read_class_folder(tmp_path)
    assert index.class_names == ("Cat", "ant", "zebra")  # plain sort, as torchvision ImageFolder
    assert index.class_counts() == {"Cat": 3, "ant": 2, "zebra": 2}
    assert len(index) == 7 and index.num_classes == 3 and index.root == str(tmp_path.absolute())
    assert all(Path(p).is_absolute() for p in index.paths)
    assert index.labels.dtype == np.int64
    assert "7 images in 3 classes" in index.summary()


def test_uppercase_extensions_are_found(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.PNG")
    _png(tmp_path / "b" / "y.Png")
    assert len(read_class_folder(tmp_path)) == 2


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    _tree(tmp_path, {"cat": 2})
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "notes.txt").write_text("x")
    with pytest.raises(UserInputError, match="without any") as info:
        read_class_folder(tmp_path)
    assert str(tmp_path / "dog") in str(info.value) and "cat" not in str(info.value).split("any:")[1]


def test_no_images_at_all_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no class folders and no images"):
        read_class_folder(tmp_path)
    _png(tmp_path / "loose.png")
    with pytest.raises(UserInputError, match="1 images but no class folders"):
        read_class_folder(tmp_path)
    with pytest.raises(UserInputError, match="does not exist"):
        read_class_folder(tmp_path / "missing")
    with pytest.raises(UserInputError, match="is a file"):
        read_class_folder(tmp_path / "loose.png")


def test_split_folders_share_train_classes(tmp_path: Path) -> None:
    _tree(tmp_path / "train", {"cat": 3, "dog": 2, "owl": 2})
    _tree(tmp_path / "Validation", {"owl": 1, "cat": 1})  # alias and subset of classes
    _tree(tmp_path / "test", {"dog": 1})
    splits = read_folder_splits(tmp_path)
    assert list(splits) == ["train", "val", "test"]
    assert all(index.class_names == ("cat", "dog", "owl") for index in splits.values())
    assert splits["val"].class_counts() == {"cat": 1, "dog": 0, "owl": 1}
    assert [s.label for s in splits["test"]] == [1]
    assert all(index.root == str(tmp_path.absolute()) for index in splits.values())


def test_val_class_missing_from_train_is_an_error(tmp_path: Path) -> None:
    _tree(tmp_path / "train", {"cat": 1})
    _tree(tmp_path / "val", {"cat": 1, "yak": 1})
    with pytest.raises(UserInputError, match="the train split does not know: yak"):
        read_folder_splits(tmp_path)


def test_flat_layout_is_returned_as_all(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": 1, "b": 1})
    splits = read_folder_splits(tmp_path)
    assert list(splits) == [ALL_SPLIT] and splits[ALL_SPLIT].class_names == ("a", "b")


def test_mixed_and_duplicate_split_folders_are_errors(tmp_path: Path) -> None:
    _tree(tmp_path / "train", {"a": 1})
    _tree(tmp_path, {"cat": 1})
    with pytest.raises(UserInputError, match="received both"):
        read_folder_splits(tmp_path)
    other = tmp_path / "other"
    _tree(other / "val", {"a": 1})
    _tree(other / "valid", {"a": 1})
    with pytest.raises(UserInputError, match="one folder per split"):
        read_folder_splits(other)


def test_list_file_with_names_indices_comments_and_spaces(tmp_path: Path) -> None:
    _png(tmp_path / "imgs" / "a b.png")
    _png(tmp_path / "imgs" / "c.png")
    absolute = _png(tmp_path / "elsewhere" / "d.png")
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text(
        "# path label\n\n../imgs/a b.png dog\n  ../imgs/c.png   cat  \n" f"{absolute} dog\n", encoding="utf-8"
    )
    index = read_list_file(listing)
    assert index.class_names == ("cat", "dog")
    assert [s.label for s in index] == [1, 0, 1]
    assert index.paths[0] == str(tmp_path / "imgs" / "a b.png")
    assert index.root == str(listing.parent.absolute())
    numeric = tmp_path / "lists" / "num.txt"
    numeric.write_text("../imgs/c.png 2\n../imgs/a b.png 0\n")
    assert read_list_file(numeric).class_names == ("0", "1", "2")
    given = read_list_file(numeric, class_names=["x", "y", "z"])
    assert given.class_names == ("x", "y", "z") and [s.label for s in given] == [2, 0]


def test_list_file_bad_lines_are_reported_with_numbers(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png cat\njustonetoken\na.png 7\nmissing.png cat\na.png kat\n")
    with pytest.raises(UserInputError) as info:
        read_list_file(listing, class_names=["cat", "dog"])
    message = str(info.value)
    assert "\n" not in message and "4 bad line(s)" in message
    for expected in ("line 2: expected '<path> <label>'", "line 3: label 7 is out of range 0..1",
                     "line 4: file not found", "line 5: unknown class 'kat'. Did you mean 'cat'?"):
        assert expected in message


def test_list_file_mixed_label_kinds_and_missing_check(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("a.png cat\nb.png 1\n")
    with pytest.raises(UserInputError, match="line 2: label '1' is an index but line 1 uses a class name"):
        read_list_file(listing, check_exists=False)
    listing.write_text("a.png cat\nb.png dog\n")
    assert len(read_list_file(listing, check_exists=False)) == 2
    listing.write_text("a.png 9\njustone\n")
    with pytest.raises(UserInputError) as info:
        read_list_file(listing, class_names=["cat"], check_exists=False)
    assert str(info.value).index("line 1:") < str(info.value).index("line 2:")  # reported in line order
    listing.write_bytes(b"\xff\xfe binary")
    with pytest.raises(UserInputError, match="UTF-8"):
        read_list_file(listing)
    listing.write_text("# only comments\n\n")
    with pytest.raises(UserInputError, match="received none"):
        read_list_file(listing)
    with pytest.raises(UserInputError, match="does not exist"):
        read_list_file(tmp_path / "nope.txt")


def test_align_to_matches_classes_by_name(tmp_path: Path) -> None:
    _tree(tmp_path, {"dog": 1, "cat": 2})  # evaluation data: a reordered subset
    data = read_class_folder(tmp_path)
    model_classes = ("bird", "cat", "dog", "frog")
    aligned = align_to(data, model_classes)
    assert aligned.class_names == model_classes
    names = [model_classes[s.label] for s in aligned]
    assert names == [data.class_names[s.label] for s in data]
    assert aligned.class_counts() == {"bird": 0, "cat": 2, "dog": 1, "frog": 0}


def test_align_to_lists_unknown_classes(tmp_path: Path) -> None:
    _tree(tmp_path, {"cat": 1, "Dog": 1, "yak": 1})
    with pytest.raises(UserInputError) as info:
        align_to(read_class_folder(tmp_path), ("cat", "dog"))
    message = str(info.value)
    assert "2 class(es) that the model does not know: Dog, yak" in message
    assert "Did you mean 'dog'?" in message


def test_index_validation_and_helpers() -> None:
    with pytest.raises(UserInputError, match="out of range"):
        DatasetIndex((Sample("a.png", 2),), ("x", "y"))
    with pytest.raises(UserInputError, match="unique"):
        DatasetIndex((), ("x", "x"))
    index = DatasetIndex([Sample("a.png", np.int64(1)), Sample(Path("b.png"), 0)], ["x", "y"])
    assert index.samples[1] == Sample("b.png", 0) and isinstance(index.samples[0].label, int)
    assert index.subset([1]).paths == ("b.png",)
    assert index.exclude(["a.png"]).paths == ("b.png",)


def test_scan_corrupt_finds_bad_files_and_reports_progress(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": 2, "b": 1})
    (tmp_path / "b" / "fake.jpg").write_text("text, not jpeg")
    good = _png(tmp_path / "a" / "big.png", 7).read_bytes()
    (tmp_path / "a" / "cut.png").write_bytes(good[: len(good) // 2])
    index = read_class_folder(tmp_path)
    seen: list[tuple[int, int]] = []
    bad = scan_corrupt(index, progress=lambda done, total: seen.append((done, total)))
    assert sorted(Path(p).name for p in bad) == ["cut.png", "fake.jpg"]
    assert seen[-1] == (len(index), len(index)) and len(seen) == len(index)
    assert len(index.exclude(bad)) == len(index) - 2
    with pytest.raises(ImageReadError):
        scan_corrupt(index, strict=True)
