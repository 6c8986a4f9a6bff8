"""Shards streamed from URLs and pipe: commands, offline against a server on 127.0.0.1: the same
samples as the local shards, each rank and loader worker streaming its own shards once per epoch,
and the faults (server down, 404, a shard cut mid-stream, a stall, a failing command) as one line
without credentials."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("aiohttp")

from alexnet_lab.core.errors import UserInputError  # noqa: E402
from alexnet_lab.data import read_class_folder  # noqa: E402
from alexnet_lab.data.datasets import read_source  # noqa: E402
from alexnet_lab.data.remote import expand_braces, redact  # noqa: E402
from alexnet_lab.data.remote_shards import shard_groups  # noqa: E402
from alexnet_lab.data.shards import TRUNCATED, read_shard_index, write_shards  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

COUNT, PER_SHARD = 24, 6  # four shards


class Handler(BaseHTTPRequestHandler):
    """Serves the shard folder; /cut/NAME sends half the bytes then closes, /slow/NAME stalls."""

    def log_message(self, *args):
        pass

    def _serve(self, body: bool) -> None:
        name, mode = self.path.lstrip("/"), ""
        if name.split("/")[0] in ("cut", "slow"):
            mode, name = name.split("/", 1)
        if mode == "slow":
            time.sleep(3)
        path = self.server.root / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.server.gets.append(self.path.lstrip("/"))  # a stalled GET of an earlier test lands as slow/...
            self.wfile.write(data[: len(data) // 2] if mode == "cut" and name.endswith(".tar") else data)
            self.close_connection = True

    def do_GET(self):
        try:
            self._serve(True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the stall test)

    def do_HEAD(self):
        self._serve(False)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i in range(COUNT):
        (root / f"c{i % 3}").mkdir(exist_ok=True)
        Image.new("RGB", (32, 32), (10 * i, 255 - 10 * i, 3 * i)).save(root / f"c{i % 3}" / f"{i:03d}.png")
    out = tmp_path_factory.mktemp("shards")
    write_shards(read_class_folder(root), out, per_shard=PER_SHARD)
    return out


@pytest.fixture(scope="module")
def server(shards):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.root, httpd.gets = shards, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def _url(server, name: str = "shard-{000000..000003}.tar", prefix: str = "") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{prefix}{name}"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_braces_expand_and_credentials_are_redacted():
    assert expand_braces("s3://b/x-{08..10}.tar") == ["s3://b/x-08.tar", "s3://b/x-09.tar", "s3://b/x-10.tar"]
    assert expand_braces("a{0..1}b{0..1}") == ["a0b0", "a0b1", "a1b0", "a1b1"]
    assert redact("see https://me:s3cret@host/x.tar and pipe:curl http://u:p@h/y") == \
        "see https://***@host/x.tar and pipe:curl http://***@h/y"
    with pytest.raises(UserInputError, match="brace range"):
        expand_braces("x-{9..1}.tar")


def test_remote_shards_hold_the_local_samples_and_class_names(server, shards):
    local = read_shard_index(shards)
    remote = read_source(_url(server))["all"]
    assert remote.class_names == local.class_names == ("c0", "c1", "c2")
    assert [s.label for s in remote] == [s.label for s in local]
    assert [s.path.split("/")[-1] for s in remote] == [s.path.split("/")[-1] for s in local]
    piped = read_source("pipe:cat " + " ".join(str(shards / f"shard-00000{i}.tar") for i in range(1))
                        )["all"]  # one shard through a command; no classes.txt beside it: numbered
    assert [s.label for s in piped] == [s.label for s in local][:PER_SHARD] and piped.class_names[0] == "0"


def test_a_shard_cut_mid_stream_counts_like_a_cut_local_file(server, shards, tmp_path):
    data = (shards / "shard-000001.tar").read_bytes()
    (tmp_path / "shard-000001.tar").write_bytes(data[: len(data) // 2])
    local = read_shard_index(tmp_path)
    remote = read_source(_url(server, "shard-000001.tar", "cut/"))["all"]
    assert len(remote) == len(local) < PER_SHARD
    assert remote.report.counts == local.report.counts == {TRUNCATED: 1}
    with pytest.raises(UserInputError, match="--strict"):
        remote.check_complete(strict=True)


def test_404_stall_and_failing_command_are_one_line_without_credentials(server, shards, monkeypatch):
    with pytest.raises(UserInputError, match=r"not found \(404\)") as missing:
        read_source(_url(server, "shard-000009.tar").replace("http://", "http://me:s3cret@"))
    assert "s3cret" not in str(missing.value) and "***@127.0.0.1" in str(missing.value)
    monkeypatch.setenv("ALEXNET_LAB_REMOTE_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(UserInputError, match=r"no answer within 0.5 s"):
        read_source(_url(server, "shard-000000.tar", "slow/"))
    assert time.monotonic() - started < 3
    with pytest.raises(UserInputError, match="exited with status 3"):
        read_source(f"pipe:cat {shards / 'shard-000000.tar'}; exit 3")


def test_server_down_is_one_line_naming_the_url_and_a_non_zero_exit(tmp_path):
    url = f"http://user:pw@127.0.0.1:{_closed_port()}/shard-{{0..1}}.tar"
    done = run_cli("train", "--data", url, "--variant", "cifar", "--epochs", "1", "--out", str(tmp_path / "run"),
                   env={"ALEXNET_LAB_REMOTE_TIMEOUT": "5"}, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert any("127.0.0.1" in line and "shard-0.tar" in line for line in lines), done.stderr
    assert "pw@" not in done.stderr


def test_each_rank_and_worker_streams_its_own_shards_once(server):
    torch = pytest.importorskip("torch")
    from alexnet_lab.core.preprocessing import PreprocessSpec
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.torch.data import IGNORE, ShardBatches, StoreDataset, make_loader

    index = read_source(_url(server))["all"]
    groups = shard_groups(index.paths)
    assert [len(g) for g in groups] == [PER_SHARD] * 4
    shard_of = {p: s for s, group in enumerate(groups) for p in group}
    readers, seen = {}, []
    for rank in range(2):  # 2 ranks x 2 workers: each reader's batches come from its own shards only
        batches = list(ShardBatches(groups, 4, rank, 2, 2, seed=1, epoch=3))
        assert len(batches) == len(ShardBatches(groups, 4, 1 - rank, 2, 2, seed=1, epoch=3))
        for i, batch in enumerate(batches):
            real = [p for p in batch if p < COUNT]
            readers.setdefault((rank, i % 2), set()).update(shard_of[p] for p in real)
            seen += real
    assert sorted(seen) == list(range(COUNT))
    assert all(len(found) == 1 for found in readers.values())
    assert len(set().union(*readers.values())) == 4
    spec = PreprocessSpec(resize=8, resize_mode="square", crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name="t8")
    store = StoreDataset(StreamedImages(index.paths, spec), index.labels, 8, None)
    server.gets.clear()
    labels = torch.cat([y for _, y in make_loader(store, 4, True, 1, 0, 2, groups=groups)])
    gets = sorted(name for name in server.gets if not name.startswith("slow/"))
    assert gets == [f"shard-00000{i}.tar" for i in range(4)]  # one stream per shard, no re-reads
    assert len(labels) == COUNT and IGNORE not in labels.tolist()
    assert sorted(labels.tolist()) == sorted(index.labels.tolist())


def test_train_from_shard_urls_a_couple_of_steps(server, tmp_path):
    url = _url(server, "shard-{000000..000003}.tar")
    done = run_cli("train", "--data", url, "--framework", "torch", "--variant", "cifar", "--epochs", "1",
                   "--limit-steps", "2", "--batch-size", "4", "--val-ratio", "0.25", "--num-workers", "2",
                   "--out", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert all(path.startswith("http://127.0.0.1:") for rows in split["splits"].values() for path, _ in rows)


@pytest.mark.slow
def test_keras_trains_from_shard_urls(server, tmp_path):
    done = run_cli("train", "--data", _url(server), "--framework", "keras", "--variant", "cifar", "--epochs", "1",
                   "--limit-steps", "2", "--batch-size", "4", "--val-ratio", "0.25", "--out", str(tmp_path / "run"),
                   timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
