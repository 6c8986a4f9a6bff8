"""Cases: files that load but lie (verify must FAIL), conversions that would destroy or lose
something, and bad images."""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np

from tests.integration.bad_inputs.corpus import Case, _copy, _edit_tensor, _predict, _verify, case, run_cli_measured

# ---------------------------------------------------------------- verify: files that load but lie

@case("bit-flip.safetensors")
def _(name, folder, good):
    def flip(array):
        array.view(np.uint32)[len(array) // 2] ^= 1  # the lowest mantissa bit of one fc6 weight
        return array
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "fc6.weight", flip)), "verify-fail", "digest")


@case("bit-flip.pth")
def _(name, folder, good):
    """A project-written .pth (converted in a subprocess) with one bit of its largest tensor flipped."""
    written = folder / "written.pth"
    result = run_cli_measured(("convert", str(good["cifar"]), str(written)))
    assert result["returncode"] == 0, result["stderr"]
    with zipfile.ZipFile(written) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)  # stored, not deflated, by torch.save
    data = bytearray(written.read_bytes())
    name_len, extra_len = struct.unpack("<2H", data[largest.header_offset + 26:largest.header_offset + 30])
    data[largest.header_offset + 30 + name_len + extra_len + largest.file_size // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    return Case(name, _verify(folder / name), "verify-fail", "digest")


@case("fc6-permuted-hwc.safetensors")
def _(name, folder, good):
    def permute(array):  # fc6 columns re-ordered C,H,W -> H,W,C: the classic Keras porting mistake
        w = array.reshape(1024, 192, 4, 4)
        return w.transpose(0, 2, 3, 1).reshape(-1)
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "fc6.weight", permute)), "verify-fail",
                "digest")


@case("conv4-x1000.safetensors")
def _(name, folder, good):
    """Rewritten with fresh records: only the scale check can tell."""
    from alexnet_lab.weights.files import load_weights, save_weights

    bundle = load_weights(good["cifar"])
    tensors = dict(bundle.tensors, **{"conv4.weight": bundle.tensors["conv4.weight"] * np.float32(1000)})
    path = save_weights(type(bundle)(tensors, bundle.meta), folder / name)
    return Case(name, _verify(path), "verify-fail", "scale")


@case("contradictory-input-size.safetensors")
def _(name, folder, good):
    """Metadata saying 32x32 input but a 224 crop: the model would be fed the wrong size."""
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.weights.files import load_weights, save_weights

    bundle = load_weights(good["cifar"])
    path = save_weights(bundle.with_meta(preprocess=TORCHVISION_IMAGENET, input_size=32), folder / name)
    return Case(name, _predict(good["a.png"], weights=path), words="contradicts itself")


@case("nan-weights.safetensors")
def _(name, folder, good):
    def poison(array):
        array[3] = np.nan
        return array
    return Case(name, _verify(_edit_tensor(good["cifar"], folder / name, "conv2.weight", poison)), "verify-fail",
                "finite")


# ---------------------------------------------------------------- convert: never destroy, never lose

@case("convert-onto-its-input")
def _(name, folder, good):
    path = _copy(good["cifar"], folder / "self.safetensors")
    return Case(name, ("convert", str(path), str(path), "--to", "torch", "--force"), words="contradicts")


@case("convert-onto-its-input-same-format")
def _(name, folder, good):
    path = _copy(good["cifar"], folder / "self2.safetensors")
    link = folder / "link.safetensors"
    link.symlink_to(path)
    return Case(name, ("convert", str(path), str(link), "--force"), words="is the input")


@case("convert-over-existing-file")
def _(name, folder, good):
    (folder / "existing.pth").write_bytes(b"someone's file")
    return Case(name, ("convert", str(good["cifar"]), str(folder / "existing.pth")), words="--force")


@case("convert-to-contradicting-suffix")
def _(name, folder, good):
    return Case(name, ("convert", str(good["cifar"]), str(folder / "out.safetensors"), "--to", "keras"),
                words="contradicts")


@case("report-over-existing-report")
def _(name, folder, good):
    (folder / "old-report").mkdir()
    (folder / "old-report" / "report.md").write_text("someone's notes")
    return Case(name, ("report", str(folder / "some-run"), "--out", str(folder / "old-report")), words="--force")


@case("convert-batchnorm-to-npy")
def _(name, folder, good):
    return Case(name, ("convert", str(good["cifar"]), str(folder / "cifar.npy")), words="BatchNorm")


@case("convert-owt-to-npy")
def _(name, folder, good):
    return Case(name, ("convert", str(good["owt"]), str(folder / "owt.npy")), words="variant record")


# ---------------------------------------------------------------- images

@case("decompression-bomb.png")
def _(name, folder, good):
    from PIL import Image

    Image.new("1", (13000, 13000)).save(folder / name, optimize=True)
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="pixel budget")


@case("truncated.jpg")
def _(name, folder, good):
    from PIL import Image

    Image.open(good["a.png"]).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="truncated or corrupt")


@case("empty.jpg")
def _(name, folder, good):
    (folder / name).write_bytes(b"")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="cannot read image")


@case("text-named.png")
def _(name, folder, good):
    (folder / name).write_text("not an image")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not in an image format")


@case("folder.png")
def _(name, folder, good):
    (folder / name).mkdir()
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="folder")


@case("fifo.png")
def _(name, folder, good):
    os.mkfifo(folder / name)
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not a regular file")


@case("symlink-to-dev-zero.png")
def _(name, folder, good):
    (folder / name).symlink_to("/dev/zero")
    return Case(name, _predict(folder / name, weights=good["cifar"]), words="not a regular file")


@case("batch-with-one-bad-image")
def _(name, folder, good):
    (folder / "bad.png").write_text("not an image")
    return Case(name, _predict(good["a.png"], folder / "bad.png", good["b.png"], weights=good["cifar"]), "partial", "bad.png")


