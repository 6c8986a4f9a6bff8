"""Cases for the surfaces beyond weight files: every command that writes, image geometry, metadata
that lies, folders that loop, shards, and the server's start-up. Each names the files it must not
touch; the ones that must be handled rather than refused check their answer."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from pathlib import Path

import numpy as np

from tests.integration.bad_inputs.corpus import Case, _copy, case


def _png(path: Path, height: int, width: int, seed: int = 0) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def _class_folder(root: Path, per_class: int = 2) -> Path:
    for k, label in enumerate(("cat", "dog")):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _png(root / label / f"{label}{i}.png", 36, 40, seed=10 * k + i)
    return root


def _with_metadata(src: Path, dst: Path, edit) -> Path:
    """Copy a .safetensors file with its metadata changed by `edit(dict) -> None` (tensors as they were)."""
    data = src.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    edit(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # keep the data section aligned, as writers do
    dst.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length:])
    return dst


def _preprocess_edit(**changes):
    def edit(metadata: dict) -> None:
        spec = json.loads(metadata["preprocess"])
        spec.update(changes)
        metadata["preprocess"] = json.dumps(spec)
    return edit


# ---------------------------------------------------------------- outputs: never destroy what was not asked for

@case("filters-onto-an-existing-file")
def _(name, folder, good):
    existing = folder / "mine.png"
    existing.write_bytes(b"a picture of my own")
    return Case(name, ("filters", str(good["cifar"]), "--out", str(existing)), words="--force", protect=(existing,))


@case("filters-out-is-a-folder")
def _(name, folder, good):
    (folder / "pictures.png").mkdir()
    return Case(name, ("filters", str(good["cifar"]), "--out", str(folder / "pictures.png"), "--force"),
                words="folder")


@case("features-force-onto-its-own-weights")
def _(name, folder, good):
    weights = _copy(good["cifar"], folder / "w.safetensors")
    return Case(name, ("features", str(good["a.png"]), "--weights", str(weights), "--layer", "fc7", "--out",
                       str(weights), "--force"), words="input", protect=(weights,))


@case("explain-into-a-folder-of-earlier-results")
def _(name, folder, good):
    out = folder / "explained"
    out.mkdir()
    (out / "explain.jsonl").write_text('{"image": "earlier.png"}\n')
    return Case(name, ("explain", str(good["a.png"]), "--weights", str(good["cifar"]), "--out", str(out)),
                words="--force", protect=(out / "explain.jsonl",))


@case("train-out-inside-the-data-folder")
def _(name, folder, good):
    data = _class_folder(folder / "data")
    return Case(name, ("train", "--data", str(data), "--variant", "cifar", "--epochs", "1", "--out",
                       str(data / "run")), words="inside", protect=(data / "cat" / "cat0.png",))


@case("convert-force-onto-a-folder")
def _(name, folder, good):
    (folder / "out.safetensors").mkdir()
    keep = folder / "out.safetensors" / "notes.txt"
    keep.write_text("mine")
    return Case(name, ("convert", str(good["cifar"]), str(folder / "out.safetensors"), "--force"), words="folder",
                protect=(keep,))


@case("filters-out-where-nothing-can-be-written")
def _(name, folder, good):
    return Case(name, ("filters", str(good["cifar"]), "--out", "/proc/filters.png"), words="cannot use")


@case("convert-out-where-nothing-can-be-written")
def _(name, folder, good):
    return Case(name, ("convert", str(good["cifar"]), "/proc/out.safetensors"), words="cannot use")


# ---------------------------------------------------------------- metadata that lies

@case("metadata-zero-std.safetensors")
def _(name, folder, good):
    path = _with_metadata(good["cifar"], folder / name, _preprocess_edit(std=[0.0, 0.2, 0.2]))
    return Case(name, ("predict", str(good["a.png"]), "--weights", str(path), "--json"), words="std")


@case("metadata-nan-scale.safetensors")
def _(name, folder, good):
    path = _with_metadata(good["cifar"], folder / name, _preprocess_edit(scale=float("nan")))
    return Case(name, ("predict", str(good["a.png"]), "--weights", str(path), "--json"), words="scale")


@case("metadata-mean-of-length-2.safetensors")
def _(name, folder, good):
    path = _with_metadata(good["cifar"], folder / name, _preprocess_edit(mean=[0.5, 0.5]))
    return Case(name, ("info", str(path)), words="mean")


@case("metadata-absurd-resize.safetensors")
def _(name, folder, good):
    path = _with_metadata(good["cifar"], folder / name, _preprocess_edit(resize=10**7, crop=32))
    return Case(name, ("predict", str(good["a.png"]), "--weights", str(path), "--json"), words="resize")


@case("metadata-duplicate-classes.safetensors")
def _(name, folder, good):
    def duplicate(metadata: dict) -> None:
        metadata["categories"] = json.dumps(["cat"] * 2 + [f"c{i}" for i in range(8)])
    return Case(name, ("info", str(_with_metadata(good["cifar"], folder / name, duplicate))), words="cat")


# ---------------------------------------------------------------- image geometry

@case("predict-a-1xN-image-among-good-ones")
def _(name, folder, good):
    thin = _png(folder / "thin.png", 1, 20_000)  # a few bytes that would resize to 256 x 5 million
    return Case(name, ("predict", str(good["a.png"]), str(thin), str(good["b.png"]), "--weights", str(good["cifar"]),
                       "--json"), "partial", "thin.png")


# ---------------------------------------------------------------- folders and shards

def _shard_labels(out: Path) -> dict[str, str]:
    """key -> label text of every sample in the shards under `out`."""
    labels = {}
    for shard in sorted(out.rglob("*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".cls"):
                    labels[member.name[:-4]] = archive.extractfile(member).read().decode().strip()
    return labels


@case("shards-of-a-folder-with-link-loops")
def _(name, folder, good):
    data = _class_folder(folder / "looped")
    (data / "cat" / "up").symlink_to("..")  # would make every dog a cat too, forever
    (data / "dog" / "here").symlink_to(".")
    out = folder / "shards-out"

    def each_image_once(result: dict) -> list[str]:
        labels = _shard_labels(out)
        return [] if len(labels) == 4 else [f"{len(labels)} samples written for 4 images"]
    return Case(name, ("shards", str(data), str(out)), "ok", check=each_image_once)


@case("shards-into-a-folder-of-earlier-shards")
def _(name, folder, good):
    data = _class_folder(folder / "data")
    out = folder / "old-shards"
    out.mkdir()
    old = out / "shard-000000.tar"
    with tarfile.open(old, "w") as archive:
        info = tarfile.TarInfo("x.cls")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"0"))
    return Case(name, ("shards", str(data), str(out)), words="--force", protect=(old,))


def _looped_classes(root: Path) -> Path:
    """Two of the model's classes (class_0, class_1), two images each, links back up and to
    themselves, and a 1x3000 strip: four images to find, each once."""
    for k in range(2):
        (root / f"class_{k}").mkdir(parents=True)
        for i in range(2):
            _png(root / f"class_{k}" / f"{k}-{i}.png", 36, 40, seed=10 * k + i)
    (root / "class_0" / "up").symlink_to("..")
    (root / "class_1" / "here").symlink_to(".")
    _png(root / "class_1" / "thin.png", 1, 3000)
    return root


@case("evaluate-a-folder-with-link-loops-and-a-1xN-image")
def _(name, folder, good):
    data = _looped_classes(folder / "looped")

    def four_images(result: dict) -> list[str]:
        count = json.loads(result["stdout"])["num_images"]
        return [] if count == 4 else [f"evaluated {count} images of 4"]
    return Case(name, ("evaluate", str(good["cifar"]), "--data", str(data), "--json", "--precision", "fp32"), "ok",
                check=four_images)


@case("explain-a-1xN-image-among-good-ones")
def _(name, folder, good):
    thin = _png(folder / "thin.png", 1, 3000)
    out = folder / "explained"

    def others_explained(result: dict) -> list[str]:
        return [] if len(list(out.glob("*.png"))) >= 2 else ["the good images were not explained"]
    return Case(name, ("explain", str(good["a.png"]), str(thin), str(good["b.png"]), "--weights", str(good["cifar"]),
                       "--out", str(out)), words="thin.png", check=others_explained)


@case("features-a-1xN-image-among-good-ones")
def _(name, folder, good):
    thin = _png(folder / "thin.png", 1, 3000)
    out = folder / "features.npz"

    def the_others_kept(result: dict) -> list[str]:
        if not out.is_file():
            return ["no features were written for the good images"]
        with np.load(out) as saved:
            kept = [Path(p).name for p in saved["paths"]]
            rows = len(saved["fc7"])
        return [] if kept == ["a.png", "b.png"] and rows == 2 else [f"kept {kept} with {rows} rows"]
    return Case(name, ("features", str(good["a.png"]), str(thin), str(good["b.png"]), "--weights", str(good["cifar"]),
                       "--layer", "fc7", "--out", str(out)), words="thin.png", check=the_others_kept)


@case("report-of-a-folder-that-is-not-a-run")
def _(name, folder, good):
    (folder / "not-a-run").mkdir()
    return Case(name, ("report", str(folder / "not-a-run"), "--out", str(folder / "report")))


# ---------------------------------------------------------------- the server's start-up

@case("serve-exposed-without-a-token")
def _(name, folder, good):
    return Case(name, ("serve", str(good["cifar"]), "--host", "0.0.0.0", "--port", "8765"), words="--token",
                env={"ALEXNET_SERVE_TOKEN": ""})


@case("serve-a-queue-smaller-than-a-batch")
def _(name, folder, good):
    return Case(name, ("serve", str(good["cifar"]), "--max-batch", "64", "--max-queue", "8"), words="--max-queue")
