"""The output policy (core.fileio.check_output) for every command that writes.

The fault list is generated: each command that writes x each way an output can destroy something
(an existing file without --force, a folder where a file is expected and the reverse, an input as
the output, also through a symlink or a hard link, an output inside an input folder). Each runs the
real CLI in a fresh process with the frameworks made unimportable, so each refusal also proves it
happens before a framework loads; each must exit non-zero with one line on stderr, no traceback,
and leave every file as it was. Then --force replacing only the command's own files, interrupted
writes that leave the old file intact, and the policy function itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import check_output
from tests.conftest import REPO, run_cli

BLOCK_FRAMEWORKS = "import sys\nfor name in ('torch', 'tensorflow', 'keras', 'jax'):\n    sys.modules[name] = None\n"

# command -> (kind of its output, file suffix, whether it has --force)
COMMANDS = {
    "filters": ("file", ".png", True),
    "features": ("file", ".npz", True),
    "convert": ("file", ".safetensors", True),
    "export": ("file", ".onnx", True),
    "savedmodel": ("folder", "", True),
    "hf": ("folder", "", True),
    "explain": ("folder", "", True),
    "report": ("folder", "", True),
    "demo": ("folder", "", True),
    "train": ("folder", "", False),
}
# a folder output's own entry, written by an earlier run of the command
OWN_ENTRY = {"savedmodel": "saved_model.pb", "hf": "model.safetensors", "explain": "explain.jsonl", "report": "report.md",
             "demo": "held-out-eval.json", "train": "config.json"}
# where another rule refuses the same output first (a name no input can have, or a folder that is not
# a SavedModel): still one line, nothing written, in that rule's words
OTHER_RULE = {("filters", "is-input"): "must name a .png file", ("export", "is-input"): "contradicts",
              ("savedmodel", "is-input"): "is not a SavedModel folder",
              ("savedmodel", "symlink-to-input"): "is not a SavedModel folder"}
FAULTS = ("exists", "folder-for-file", "file-for-folder", "is-input", "symlink-to-input", "hardlink-to-input",
          "inside-input")


def _cases() -> list[tuple[str, str]]:
    cases = []
    for command, (kind, _, _) in COMMANDS.items():
        for fault in FAULTS:
            if kind == "folder" and fault == "hardlink-to-input":
                continue  # folders cannot be hard-linked
            if command == "demo" and fault in ("is-input", "symlink-to-input", "inside-input"):
                continue  # the demo reads no input
            if command == "savedmodel" and fault == "folder-for-file":
                continue  # a SavedModel folder is replaced as a whole: it has no entry of its own kind to clash
            cases.append((command, fault))
    return cases


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A randomly initialised `cifar` model as .safetensors (numpy only)."""
    from alexnet_lab.core.bundle import ModelMeta, WeightBundle, generic_categories
    from alexnet_lab.core.preprocessing import PreprocessSpec
    from alexnet_lab.core.spec import get_arch
    from alexnet_lab.weights.formats.safetensors_io import write_safetensors

    rng = np.random.default_rng(5)
    tensors = {k: rng.standard_normal(s).astype(np.float32) * 0.05
               for k, s in get_arch("cifar").canonical_shapes(10).items()}
    for key in tensors:
        if key.endswith("running_var"):
            tensors[key] = np.abs(tensors[key]) + 1.0
    meta = ModelMeta("cifar", generic_categories(10), PreprocessSpec(resize=32, resize_mode="none", crop=32,
                                                                      name="cifar"), source="output-policy test")
    return write_safetensors(WeightBundle(tensors, meta), tmp_path_factory.mktemp("weights") / "w.safetensors")


@pytest.fixture(scope="module")
def blocker(tmp_path_factory) -> Path:
    """A sitecustomize that makes torch, TensorFlow, Keras and JAX unimportable."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCK_FRAMEWORKS)
    return folder


def _png(path: Path, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((36, 36, 3), value, np.uint8)).save(path)
    return path


def _world(root: Path, weights: Path) -> dict[str, Path]:
    """The inputs: a hard link to the weights, a class folder and a run folder holding a model."""
    w = root / "w.safetensors"
    os.link(weights, w)
    data = root / "data"
    for i, name in enumerate(("cat", "dog")):
        _png(data / name / "0.png", 60 * i)
    run = root / "run"
    run.mkdir()
    os.link(weights, run / "best.safetensors")
    for name in ("config.json", "metrics.jsonl", "eval.json"):
        (run / name).write_text("{}\n")
    return {"w": w, "data": data, "run": run, "image": data / "cat" / "0.png"}


def _argv(command: str, out: Path, world: dict[str, Path], source: Path | None = None) -> list[str]:
    """The command line writing `out`; `source` replaces the weights (a run folder for folder inputs)."""
    w = str(source or world["w"])
    return {
        "filters": ["filters", w, "--out", str(out)],
        "features": ["features", str(world["image"]), "--weights", w, "--layer", "fc7", "--out", str(out)],
        "convert": ["convert", w, str(out)],
        "export": ["convert", w, str(out), "--to", "onnx"],
        "savedmodel": ["convert", w, str(out), "--to", "savedmodel"],
        "hf": ["convert", w, str(out), "--to", "hf"],
        "explain": ["explain", str(world["image"]), "--weights", w, "--out", str(out)],
        "report": ["report", str(source or world["run"]), "--out", str(out)],
        "demo": ["demo", "--out", str(out), "--epochs", "1"],
        "train": ["train", "--data", str(source or world["data"]), "--variant", "cifar", "--epochs", "1",
                  "--out", str(out)],
    }[command]


def _input_folder(command: str, world: dict[str, Path]) -> Path:
    """The folder input a command's output may not be or lie in: the data folder for train, else a run folder."""
    return world["data"] if command == "train" else world["run"]


def _setup(command: str, fault: str, root: Path, world: dict[str, Path]) -> tuple[list[str], str]:
    """(argv, a word the error line must hold) for one fault."""
    kind, suffix, has_force = COMMANDS[command]
    out = root / f"out{suffix}"
    source = None
    if fault == "exists":
        if kind == "file":
            out.write_bytes(b"someone's earlier file")
        else:
            (out / OWN_ENTRY[command]).parent.mkdir(parents=True)
            (out / OWN_ENTRY[command]).write_text("earlier output\n")
        argv = _argv(command, out, world)
        return argv, "--resume" if command == "train" else "--force"
    if fault == "folder-for-file":
        clash = out if kind == "file" else out / OWN_ENTRY[command]
        clash.mkdir(parents=True)
        (clash / "keep.txt").write_text("a folder's file\n")
        word = "already holds a run" if command == "train" else "is a folder where a file is expected"
    elif fault == "file-for-folder":
        if kind == "file":
            (root / "notes").write_text("a file\n")
            out = root / "notes" / f"out{suffix}"
            word = "is a file, not a folder"
        else:
            out.write_text("a file\n")
            word = "is a file where a folder is expected"
    elif fault == "is-input":
        out = world["w"] if kind == "file" else _input_folder(command, world)
        source = None if kind == "file" else out
        word = "is the input"
    elif fault == "symlink-to-input":
        target = world["w"] if kind == "file" else _input_folder(command, world)
        out.symlink_to(target)
        source = None if kind == "file" else target
        word = "is the input"
    elif fault == "hardlink-to-input":
        os.link(world["w"], out)
        word = "is the input"
    else:  # inside-input
        source = _input_folder(command, world)
        out = source / f"out{suffix}"
        word = "is inside the input folder"
    word = OTHER_RULE.get((command, fault), word)
    return _argv(command, out, world, source) + (["--force"] if has_force else []), word


def _snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under the roots: type, and for files size, mtime and sha256 or inode (symlinks: their target)."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            info = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                found[str(path)] = ("dir",)
            elif info.st_size > 1 << 20:  # the weights: an in-place write changes the mtime, a replace the inode
                found[str(path)] = ("file", info.st_size, info.st_mtime_ns, info.st_ino)
            else:
                found[str(path)] = ("file", info.st_size, info.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command, fault", _cases())
def test_every_writing_command_refuses_each_fault_before_loading_a_framework(command, fault, tmp_path, weights,
                                                                              blocker):
    world = _world(tmp_path, weights)
    argv, word = _setup(command, fault, tmp_path, world)
    before = _snapshot(tmp_path, weights)
    result = run_cli(*argv, env={"PYTHONPATH": f"{blocker}{os.pathsep}{REPO / 'src'}"})
    line = _one_line_error(result)
    assert word in line, line
    assert _snapshot(tmp_path, weights) == before  # nothing changed, nothing written


def test_the_blocker_blocks(tmp_path, weights, blocker):
    """Control: a command that does load a framework fails under the blocker."""
    world = _world(tmp_path, weights)
    result = run_cli("features", str(world["image"]), "--weights", str(world["w"]), "--layer", "fc7", "--out",
                     str(tmp_path / "f.npz"), env={"PYTHONPATH": f"{blocker}{os.pathsep}{REPO / 'src'}"})
    assert result.returncode != 0 and "torch" in result.stderr


# --- --force replaces only the command's own files -------------------------------------------


def _replaced_only(folder: Path, own: list[str], argv: list[str]) -> None:
    before = _snapshot(folder)
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr[-2000:]
    after = _snapshot(folder)
    for name in own:
        assert after[str(folder / name)] != before[str(folder / name)], name
    untouched = {k: v for k, v in before.items() if k not in {str(folder / n) for n in own} and k != str(folder)}
    assert {k: after.get(k) for k in untouched} == untouched


def test_filters_force_replaces_its_file_only(tmp_path, weights):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "conv1.png").write_bytes(b"an earlier picture")
    (folder / "notes.txt").write_text("unrelated\n")
    _replaced_only(folder, ["conv1.png"], ["filters", str(weights), "--out", str(folder / "conv1.png"), "--force"])


def test_convert_force_replaces_its_file_only(tmp_path, weights):
    folder = tmp_path / "converted"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"an earlier conversion")
    (folder / "notes.txt").write_text("unrelated\n")
    _replaced_only(folder, ["model.safetensors"], ["convert", str(weights), str(folder / "model.safetensors"),
                                                   "--force"])


def test_explain_force_replaces_its_own_files_and_leaves_the_rest(tmp_path, weights):
    world = _world(tmp_path, weights)
    folder = tmp_path / "explained"
    folder.mkdir()
    (folder / "explain.jsonl").write_text('{"image": "earlier"}\n')
    (folder / "0.gradcam.png").write_bytes(b"an earlier map")
    (folder / "other.gradcam.png").write_bytes(b"another image's map")
    (folder / "notes.txt").write_text("unrelated\n")
    argv = ["explain", str(world["image"]), "--weights", str(world["w"]), "--out", str(folder), "--force"]
    _replaced_only(folder, ["explain.jsonl", "0.gradcam.png"], argv)
    assert json.loads((folder / "explain.jsonl").read_text())["png"] == str(folder / "0.gradcam.png")


def test_report_force_replaces_its_own_files_and_leaves_the_rest(tmp_path):
    from tests.unit.test_evaluate_report import make_torch_run

    run = make_torch_run(tmp_path / "runs")
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").write_text("an earlier report\n")
    (folder / "report.html").write_text("<p>an earlier report</p>\n")
    (folder / "notes.txt").write_text("unrelated\n")
    _replaced_only(folder, ["report.md", "report.html"], ["report", str(run), "--out", str(folder), "--force"])


def test_demo_force_removes_only_the_demos_own_files(tmp_path):
    from alexnet_lab.train.demo import _clear_previous

    out = tmp_path / "demo"
    (out / "run" / "checkpoints").mkdir(parents=True)
    (out / "run" / "eval.json").write_text("{}")
    (out / "report").mkdir()
    (out / "report" / "report.md").write_text("earlier")
    (out / "held-out-eval.json").write_text("{}")
    (out / "notes.txt").write_text("unrelated\n")
    with pytest.raises(UserInputError, match="already holds this command's earlier output"):
        _clear_previous(out, out / "run", force=False)
    assert (out / "run" / "eval.json").is_file()
    _clear_previous(out, out / "run", force=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# --- interrupted writes leave the old file intact --------------------------------------------


class Interrupted(Exception):
    """Raised by a writer in the middle of its file."""


def _half_then_raise(target_arg: int = 0):
    def write(*args, **kwargs):
        target = args[target_arg]
        if hasattr(target, "write"):
            target.write(b"half a file")
        else:
            Path(target).write_bytes(b"half a file")
        raise Interrupted

    return write


def _intact(path: Path, old: bytes) -> None:
    assert path.read_bytes() == old
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


def test_an_interrupted_filters_png_leaves_the_old_file(tmp_path, weights, monkeypatch):
    from alexnet_lab.cli.main import main

    old = tmp_path / "conv1.png"
    old.write_bytes(b"the earlier picture")
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: _half_then_raise()(fp))
    with pytest.raises(Interrupted):
        main(["filters", str(weights), "--out", str(old), "--force"])
    _intact(old, b"the earlier picture")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".safetensors"])
def test_an_interrupted_features_file_leaves_the_old_file(tmp_path, monkeypatch, suffix):
    import safetensors.numpy

    from alexnet_lab.explain.features import write_features

    old = tmp_path / f"features{suffix}"
    old.write_bytes(b"earlier features")
    monkeypatch.setattr(np, "save", _half_then_raise())
    monkeypatch.setattr(np, "savez", _half_then_raise())
    monkeypatch.setattr(safetensors.numpy, "save_file", lambda arrays, name, **k: _half_then_raise()(name))
    with pytest.raises(Interrupted):
        write_features({"fc7": np.zeros((1, 4), np.float32)}, [Path("a.png")], old)
    _intact(old, b"earlier features")


def test_an_interrupted_convert_leaves_the_old_file(tmp_path, weights, monkeypatch):
    from alexnet_lab.cli.main import main
    from alexnet_lab.weights.formats import safetensors_io

    old = tmp_path / "model.safetensors"
    old.write_bytes(b"an earlier conversion")
    monkeypatch.setattr(safetensors_io, "save_file", lambda tensors, name, **k: _half_then_raise()(name))
    with pytest.raises(Interrupted):
        main(["convert", str(weights), str(old), "--force"])
    _intact(old, b"an earlier conversion")


def test_an_interrupted_report_leaves_the_old_report(tmp_path, monkeypatch):
    from alexnet_lab.evaluate import report
    from tests.unit.test_evaluate_report import make_torch_run

    run = make_torch_run(tmp_path / "runs")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.md").write_bytes(b"the earlier report")
    monkeypatch.setattr(report, "render_markdown", lambda *a: _half_then_raise()(folder / "report.md.part"))
    with pytest.raises(Interrupted):
        report.write_report([run], folder, force=True)
    (folder / "report.md.part").unlink()
    _intact(folder / "report.md", b"the earlier report")


def test_an_interrupted_export_leaves_the_old_file(tmp_path):
    from alexnet_lab.inference.export import _staged

    old = tmp_path / "model.onnx"
    old.write_bytes(b"an earlier export")
    with pytest.raises(Interrupted), _staged(old) as staged:
        _half_then_raise()(staged)
    _intact(old, b"an earlier export")


def test_an_interrupted_explain_picture_leaves_the_old_file(tmp_path, monkeypatch):
    from alexnet_lab.explain.draw import save_png

    old = tmp_path / "a.gradcam.png"
    old.write_bytes(b"the earlier map")
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: _half_then_raise()(fp))
    with pytest.raises(Interrupted):
        save_png(np.zeros((4, 4, 3), np.uint8), old)
    _intact(old, b"the earlier map")


# --- the policy function ---------------------------------------------------------------------


def test_owned_entries_need_force_and_other_files_never_count(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("unrelated")
    assert check_output(folder, kind="folder", owned=("a.json", "assets/")) == []  # nothing of ours there
    (folder / "assets").mkdir()
    assert check_output(folder, kind="folder", owned=("a.json", "assets/")) == []  # an empty folder holds nothing
    (folder / "assets" / "x.png").write_bytes(b"x")
    (folder / "a.json").write_text("{}")
    with pytest.raises(UserInputError, match=r"earlier output \(a.json, assets\); pass --force"):
        check_output(folder, kind="folder", owned=("a.json", "assets/"))
    assert check_output(folder, kind="folder", owned=("a.json", "assets/"), force=True) == [folder / "a.json",
                                                                                            folder / "assets"]


def test_an_owned_glob_pattern_stands_for_its_matches(tmp_path):
    for name in ("shard-000000.tar", "shard-000001.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(UserInputError, match=r"\(shard-000000.tar, shard-000001.tar\)"):
        check_output(tmp_path, kind="folder", owned=("shard-*.tar", "classes.txt"))
    found = check_output(tmp_path, kind="folder", owned=("shard-*.tar", "classes.txt"), force=True)
    assert found == [tmp_path / "shard-000000.tar", tmp_path / "shard-000001.tar"]  # for the caller to remove
    assert check_output(tmp_path / "new", kind="folder", owned=("shard-*.tar",)) == []


def test_an_owned_entry_of_the_wrong_kind_is_refused_even_with_force(tmp_path):
    (tmp_path / "a.json").mkdir()
    (tmp_path / "assets").write_text("a file")
    with pytest.raises(UserInputError, match="a.json' is a folder where a file is expected"):
        check_output(tmp_path, kind="folder", owned=("a.json",), force=True)
    with pytest.raises(UserInputError, match="assets' is a file where a folder is expected"):
        check_output(tmp_path, kind="folder", owned=("assets/",), force=True)


def test_inputs_are_never_replaced_through_any_name(tmp_path):
    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    os.link(weights, tmp_path / "hard.bin")
    (tmp_path / "soft.bin").symlink_to(weights)
    (tmp_path / "data-link").symlink_to(data)
    for out, match in [(tmp_path / "hard.bin", "is the input"), (tmp_path / "soft.bin", "is the input"),
                       (data / "cat" / "x.png", "inside the input folder"),
                       (tmp_path / "data-link" / "x.png", "inside the input folder")]:
        with pytest.raises(UserInputError, match=match):
            check_output(out, [weights, data], force=True)
    with pytest.raises(UserInputError, match="holds the input"):  # a folder replaced as a whole
        check_output(tmp_path, [weights], force=True, kind="folder")
    with pytest.raises(UserInputError, match="holds the input"):  # an owned folder
        check_output(tmp_path, [data / "cat"], force=True, kind="folder", owned=("data/",))
    check_output(tmp_path, [data], kind="folder", owned=("report.md",))  # writing beside an input is fine


def test_the_old_signature_still_works(tmp_path):
    source = tmp_path / "in.pth"
    source.write_bytes(b"input")
    check_output(tmp_path / "new.safetensors", [source], False, "--overwrite")
    (tmp_path / "old.safetensors").write_bytes(b"old")
    with pytest.raises(UserInputError, match="pass --overwrite"):
        check_output(tmp_path / "old.safetensors", [source], False, "--overwrite")
    with pytest.raises(ValueError):
        check_output(tmp_path / "x", kind="tree")

