"""The weight registry: entries, aliases, suggestions and entry validation."""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.preprocessing import BVLC_CAFFE, TORCHVISION_IMAGENET
from alexnet_lab.core.spec import VARIANTS
from alexnet_lab.weights.registry import (
    ENTRIES,
    SOURCE_FORMATS,
    WeightEntry,
    get_entry,
    is_registry_name,
    registry_names,
)


def test_torchvision_entry():
    entry = get_entry("torchvision")
    assert entry.url == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert (entry.variant, entry.source_format, entry.preprocess) == ("owt", "torchvision-pth", TORCHVISION_IMAGENET)
    assert entry.sha256_prefix == "7be5be79" and entry.expected_hash == "7be5be79"
    assert entry.size == 244_408_911 and entry.size_exact
    assert entry.metrics_dict == {"acc@1": 56.522, "acc@5": 79.066}
    assert len(entry.category_names) == 1000 and entry.category_names[0] == "tench"


def test_bvlc_entry_has_no_trusted_hash_and_approximate_size():
    entry = get_entry("bvlc")
    assert entry.url == "http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy"
    assert (entry.variant, entry.source_format, entry.preprocess) == ("original", "caffe-npy", BVLC_CAFFE)
    assert entry.expected_hash == "" and not entry.size_exact
    assert entry.metrics_dict == {"acc@1": 57.1, "acc@5": 80.2} and "227" in entry.metrics_note
    assert len(entry.category_names) == 1000


@pytest.mark.parametrize("entry", list(ENTRIES.values()), ids=list(ENTRIES))
def test_entries_are_consistent(entry):
    assert entry.filename == PurePosixPath(urlparse(entry.url).path).name
    assert entry.sha256_prefix in entry.filename  # torchvision's naming; '' is in any name
    assert entry.variant in VARIANTS and entry.source_format in SOURCE_FORMATS
    assert entry.description and entry.license and entry.metrics_note
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.url = "http://elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize("name, expected", [
    ("torchvision", "torchvision"), ("imagenet", "torchvision"), ("IMAGENET", "torchvision"),
    (" bvlc ", "bvlc"), ("BVLC", "bvlc"),
])
def test_names_and_aliases_resolve(name, expected):
    assert get_entry(name).name == expected and is_registry_name(name)


def test_unknown_name_suggests_close_match():
    with pytest.raises(UserInputError, match="unknown weights name 'torchvison'.*Did you mean 'torchvision'") as info:
        get_entry("torchvison")
    assert "bvlc, imagenet, torchvision" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["weights.pth", "", "alexnet", "./bvlc"])
def test_is_registry_name_rejects_paths_and_others(name):
    assert not is_registry_name(name)


def test_registry_names():
    assert registry_names() == ("bvlc", "imagenet", "torchvision")


def _make(**changes):
    fields = dict(name="x", variant="owt", url="http://h/x.pth", filename="x.pth",
                  source_format="torchvision-pth", preprocess=TORCHVISION_IMAGENET)
    return WeightEntry(**{**fields, **changes})


def test_full_sha256_derives_prefix_and_is_normalised():
    digest = "AB" * 32
    entry = _make(sha256=digest)
    assert entry.sha256 == digest.lower() and entry.sha256_prefix == "abababab"
    assert entry.expected_hash == entry.sha256


@pytest.mark.parametrize("changes, message", [
    ({"variant": "orignal"}, "unknown variant 'orignal'.*Did you mean 'original'"),
    ({"source_format": "keras"}, "unknown source format 'keras'"),
    ({"sha256": "abc"}, "expected sha256 as hex \\(64 digits\\) or ''; received 'abc'"),
    ({"sha256_prefix": "xyz"}, "expected sha256_prefix as hex"),
    ({"sha256": "a" * 64, "sha256_prefix": "b"}, "is not the start of sha256"),
])
def test_invalid_entries_are_refused(changes, message):
    with pytest.raises(UserInputError, match=message):
        _make(**changes)
