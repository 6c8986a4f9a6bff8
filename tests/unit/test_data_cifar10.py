"""CIFAR-10 python batches: real format generated here, read safely, downloaded from a local server."""

from __future__ import annotations

import functools
import http.server
import pickle
import tarfile
import threading

import numpy as np
import pytest

from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.fileio import sha256_file
from alexnet_lab.data import cifar10
from alexnet_lab.data.datasets import load_pixels, resolve_data
from alexnet_lab.weights.download import DownloadError, RemoteFile

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_batch(path, images, labels):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # R, G, B planes per row
    doc = {b"batch_label": b"batch", b"labels": [int(y) for y in labels], b"data": data,
           b"filenames": [f"img{i}.png".encode() for i in range(len(labels))]}
    path.write_bytes(pickle.dumps(doc, protocol=2))  # the format Python 2 wrote


@pytest.fixture()
def batches(tmp_path):
    root = tmp_path / "src" / cifar10.BATCH_DIR
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    truth = {}
    for name, count in [*[(b, 10) for b in cifar10.TRAIN_BATCHES], ("test_batch", 5)]:
        images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        labels = np.arange(count) % 10
        _write_batch(root / name, images, labels)
        truth[name] = (images, labels)
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in NAMES]}, protocol=2))
    return root, truth


def test_reads_batches_exactly(batches):
    root, truth = batches
    found = cifar10.indexes(cifar10.locate(str(root.parent)))
    assert len(found["all"]) == 50 and len(found["test"]) == 5
    assert found["all"].class_names == tuple(NAMES)
    third_batch_first = found["all"].samples[20]
    assert np.array_equal(load_pixels(third_batch_first.path), truth["data_batch_3"][0][0])
    assert np.array_equal(load_pixels(found["test"].samples[4].path), truth["test_batch"][0][4])


def test_resolve_keeps_the_official_test_split(batches):
    root, _ = batches
    data = resolve_data("cifar10", data_dir=str(root), val_ratio=0.2, seed=3)
    assert {name: len(index) for name, index in data.splits.items()} == {"train": 40, "val": 10, "test": 5}


def test_unsafe_batch_is_refused(batches, tmp_path):
    root, _ = batches
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    cifar10.load_split_arrays.cache_clear()
    with pytest.raises(AlexnetLabError, match="refuses"):
        cifar10.load_split_arrays(str(root), "train")
    assert not marker.exists()


@pytest.fixture()
def server(batches, tmp_path):
    root, _ = batches
    archive = tmp_path / "www" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=cifar10.BATCH_DIR)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(args)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(archive.parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{archive.name}", archive, hits
    httpd.shutdown()


def test_download_is_refused_when_the_hash_differs(server, tmp_path, monkeypatch):
    url, _, _ = server
    monkeypatch.setenv(cifar10.URL_ENV, url)
    with pytest.raises(DownloadError, match=r"expected (170498071|6d958be0)"):  # size, then hash, are checked
        cifar10.locate(None, cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / "cifar-10-python.tar.gz").exists()


def test_download_extracts_once_into_the_cache(server, tmp_path, monkeypatch):
    url, archive, hits = server
    checked = RemoteFile("cifar10", url, archive.name, sha256=sha256_file(archive))
    monkeypatch.setattr(cifar10, "archive", lambda: checked)
    cifar10.load_split_arrays.cache_clear()
    cache = tmp_path / "cache"
    folder = cifar10.locate(None, cache_dir=str(cache))
    assert folder == cache / cifar10.BATCH_DIR and len(cifar10.indexes(folder)["all"]) == 50
    requests = len(hits)
    assert cifar10.locate(None, cache_dir=str(cache)) == folder and len(hits) == requests  # no second download
