"""fetch(): caching, hash checks, trust-on-first-use records and failures, against a real local HTTP server."""

from __future__ import annotations

import hashlib
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
from alexnet_lab.weights.download import (
    DownloadError,
    cache_path,
    default_cache_dir,
    fetch,
    hash_record_path,
)
from alexnet_lab.weights.registry import WeightEntry

DATA = np.random.default_rng(0).integers(0, 256, size=3 * (1 << 20) + 123, dtype=np.uint8).tobytes()  # > 3 chunks
DIGEST = hashlib.sha256(DATA).hexdigest()


@dataclass
class Server:
    url: str
    routes: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (body, Content-Length)
    hits: list[str] = field(default_factory=list)

    def serve(self, path: str, body: bytes, declared: int | None = None) -> str:
        self.routes[path] = (body, len(body) if declared is None else declared)
        return self.url + path


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: the connection closes after each response
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path not in state.routes:
                self.send_error(404, "Not Found")
                return
            body, declared = state.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            self.wfile.write(body)  # fewer bytes than declared simulates a dropped connection

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALEXNET_LAB_OFFLINE", "ALEXNET_LAB_CACHE", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")  # never route the local server through a proxy
    monkeypatch.setenv("no_proxy", "*")


def _entry(url: str, **hashes: object) -> WeightEntry:
    return WeightEntry(
        name="test", variant="owt", url=url, filename="weights.bin",
        source_format="torchvision-pth", preprocess=TORCHVISION_IMAGENET, **hashes,
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("hashes", [{"sha256": DIGEST, "size": len(DATA)}, {"sha256_prefix": DIGEST[:8]}])
def test_download_then_cache_hit_without_network(server, tmp_path, hashes):
    entry = _entry(server.serve("/w.bin", DATA), **hashes)
    path = fetch(entry, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "weights.bin" and path.read_bytes() == DATA
    assert fetch(entry, cache_dir=tmp_path, progress=False) == path
    assert server.hits == ["/w.bin"]  # the second call never contacted the server
    assert _leftovers(tmp_path) == ["weights.bin"]


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_LAB_CACHE", str(tmp_path / "cache"))
    path = fetch(_entry(server.serve("/w.bin", DATA), sha256=DIGEST), progress=False)
    assert path == tmp_path / "cache" / "weights.bin"


@pytest.mark.parametrize("hashes", [{"sha256": "0" * 64}, {"sha256_prefix": "deadbeef"}])
def test_hash_mismatch_removes_file_and_raises(server, tmp_path, hashes):
    entry = _entry(server.serve("/w.bin", DATA), **hashes)
    with pytest.raises(DownloadError, match=f"has sha256 {DIGEST}, expected") as info:
        fetch(entry, cache_dir=tmp_path, progress=False)
    assert "\n" not in str(info.value)
    assert _leftovers(tmp_path) == []


def test_unknown_hash_is_recorded_then_tampering_is_detected(server, tmp_path):
    entry = _entry(server.serve("/w.bin", DATA))  # no sha256 known, like bvlc
    path = fetch(entry, cache_dir=tmp_path, progress=False)
    record = hash_record_path(path)
    assert record.read_text().split() == [DIGEST, "weights.bin"]
    assert fetch(entry, cache_dir=tmp_path, progress=False) == path and len(server.hits) == 1

    path.write_bytes(DATA[:-1] + b"\x00")  # tampered in the cache
    with pytest.raises(DownloadError, match="recorded at its first download.*it was removed"):
        fetch(entry, cache_dir=tmp_path, progress=False)
    assert not path.exists() and record.exists()

    server.serve("/w.bin", DATA[::-1])  # upstream now serves different bytes: the record catches it
    with pytest.raises(DownloadError, match="expected " + DIGEST):
        fetch(entry, cache_dir=tmp_path, progress=False)
    server.serve("/w.bin", DATA)
    assert fetch(entry, cache_dir=tmp_path, progress=False).read_bytes() == DATA
    assert _leftovers(tmp_path) == ["weights.bin", "weights.bin.sha256"]


def test_manually_placed_file_is_verified_and_used_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_LAB_OFFLINE", "1")
    entry = _entry("http://127.0.0.1:9/unused", sha256_prefix=DIGEST[:8])
    (tmp_path / "weights.bin").write_bytes(DATA)
    assert fetch(entry, cache_dir=tmp_path, progress=False) == tmp_path / "weights.bin"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/weights.bin"


def test_server_down_names_url_and_cache_path(tmp_path):
    url = _closed_port_url()
    with pytest.raises(DownloadError) as info:
        fetch(_entry(url, sha256=DIGEST), cache_dir=tmp_path, progress=False)
    message = str(info.value)
    assert url in message and str(tmp_path / "weights.bin") in message and "\n" not in message
    assert _leftovers(tmp_path) == []


def test_http_404(server, tmp_path):
    url = server.url + "/missing.bin"
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch(_entry(url, sha256=DIGEST), cache_dir=tmp_path, progress=False)
    assert url in str(info.value) and str(tmp_path / "weights.bin") in str(info.value)
    assert server.hits == ["/missing.bin"] and _leftovers(tmp_path) == []


def test_offline_env_never_touches_the_network(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_LAB_OFFLINE", "1")
    url = server.serve("/w.bin", DATA)
    with pytest.raises(DownloadError, match="ALEXNET_LAB_OFFLINE is set") as info:
        fetch(_entry(url, sha256=DIGEST), cache_dir=tmp_path, progress=False)
    assert url in str(info.value) and str(tmp_path / "weights.bin") in str(info.value)
    assert server.hits == []


def test_offline_registry_name_names_real_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_LAB_OFFLINE", "yes")
    with pytest.raises(DownloadError, match=r"guerzhoy/tf_alexnet/bvlc_alexnet\.npy") as info:
        fetch("bvlc", cache_dir=tmp_path)
    assert isinstance(info.value, AlexnetLabError) and str(tmp_path / "bvlc_alexnet.npy") in str(info.value)


@pytest.mark.parametrize("hashes", [{}, {"sha256": DIGEST}])
def test_interrupted_download_leaves_nothing_in_place(server, tmp_path, hashes):
    url = server.serve("/w.bin", DATA[: len(DATA) // 2], declared=len(DATA))
    with pytest.raises(DownloadError, match=f"stopped after {len(DATA) // 2} of {len(DATA)} bytes"):
        fetch(_entry(url, **hashes), cache_dir=tmp_path, progress=False)
    assert _leftovers(tmp_path) == []  # no partial file, no temp file, no hash record


def test_exact_size_mismatch_is_refused(server, tmp_path):
    url = server.serve("/w.bin", DATA)
    with pytest.raises(DownloadError, match=f"received {len(DATA)} bytes, expected 10"):
        fetch(_entry(url, size=10), cache_dir=tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_default_cache_dir_per_platform(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert default_cache_dir() == tmp_path / ".cache" / "alexnet-lab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "alexnet-lab"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_cache_dir() == tmp_path / "Library" / "Caches" / "alexnet-lab"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert default_cache_dir() == tmp_path / "local" / "alexnet-lab"
    monkeypatch.setenv("ALEXNET_LAB_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert cache_path(_entry("x"), tmp_path / "c") == tmp_path / "c" / "weights.bin"


def test_malformed_url_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="could not download notaurl .*save it as"):
        fetch(_entry("notaurl", sha256=DIGEST), cache_dir=tmp_path, progress=False)
    assert _leftovers(tmp_path) == []
