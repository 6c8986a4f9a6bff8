"""`manifest.json` of a shard folder: what `alexnet shards` wrote, so a reader can prove it has it all.

    {"format": "alexnet-lab-shards", "version": 1, "class_names": ["cat", ...], "total": 37,
     "shards": [{"file": "shard-000000.tar", "samples": 5, "bytes": 20480, "sha256": "..."}, ...]}

It is written last and atomically: a folder with shards but no manifest was never finished (or
was written before manifests existed, and is read unchecked). Reading a folder that has one
refuses, in one line, a listed shard that is missing, a shard it does not list, a shard whose
size, sha256 or sample count differ, and class names that differ from classes.txt. It also
names the files `--force` may remove: those listed, classes.txt and the manifest itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path, sha256_file

MANIFEST_FILE = "manifest.json"
CLASSES_FILE = "classes.txt"  # one class name a line; label i is line i
FORMAT = "alexnet-lab-shards"
VERSION = 1
_REWRITE = "rewrite the folder with `alexnet shards CLASS_FOLDER OUT_DIR --force`."


def write_manifest(folder: Path, shards: list[tuple[Path, int]], class_names: tuple[str, ...]) -> Path:
    """Write `folder`/manifest.json for (shard path, sample count) pairs, hashing each shard."""
    entries = [{"file": path.name, "samples": count, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
               for path, count in shards]
    doc = {"format": FORMAT, "version": VERSION, "class_names": list(class_names),
           "total": sum(count for _, count in shards), "shards": entries}
    with atomic_path(folder / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder / MANIFEST_FILE


def read_manifest(folder: Path) -> dict | None:
    """The manifest of `folder`, or None when it has none.

    Raises:
        UserInputError: a manifest that is not one `alexnet shards` wrote.
    """
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ok = doc["format"] == FORMAT and doc["version"] == VERSION and all(
            _shard_name(e["file"]) and int(e["samples"]) >= 0 for e in doc["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise UserInputError(f"'{path}' is not a shard manifest (format {FORMAT} v{VERSION}) or is damaged; {_REWRITE}")
    return doc


def _shard_name(name: object) -> bool:
    """A plain `*.tar` name in the folder itself: a manifest can never make --force remove anything else."""
    return isinstance(name, str) and name.endswith(".tar") and Path(name).name == name and "\\" not in name


def check_files(folder: Path, manifest: dict, tars: list[str]) -> None:
    """The shard files against the manifest: the same names, sizes and sha256 (before any is read).

    Raises:
        UserInputError: the first difference, in one line.
    """
    listed = {entry["file"]: entry for entry in manifest["shards"]}
    present = {os.path.basename(path): path for path in tars}
    missing = sorted(set(listed) - set(present))
    extra = sorted(set(present) - set(listed))
    if missing or extra:
        what = f"missing {', '.join(missing[:3])}" if missing else f"not listed: {', '.join(extra[:3])}"
        raise UserInputError(f"shards in '{folder}' differ from its {MANIFEST_FILE} ({what}; {len(missing)} missing, "
                             f"{len(extra)} not listed); {_REWRITE}")
    for name, entry in listed.items():
        size = os.path.getsize(present[name])
        if size != entry["bytes"] or sha256_file(present[name]) != entry["sha256"]:
            raise UserInputError(f"shard '{present[name]}' is not the one {MANIFEST_FILE} lists (size {size} vs "
                                 f"{entry['bytes']} bytes, or another sha256): truncated or changed; {_REWRITE}")


def check_contents(folder: Path, manifest: dict, counts: dict[str, int], class_names: tuple[str, ...]) -> None:
    """Sample counts per shard and class names against the manifest.

    Raises:
        UserInputError: the first difference, in one line.
    """
    for entry in manifest["shards"]:
        if counts.get(entry["file"], 0) != entry["samples"]:
            raise UserInputError(f"shard '{folder / entry['file']}' holds {counts.get(entry['file'], 0)} samples; its "
                                 f"{MANIFEST_FILE} says {entry['samples']}; {_REWRITE}")
    if tuple(manifest["class_names"]) != tuple(class_names):
        raise UserInputError(f"the class names of '{folder}' ({len(class_names)}, from classes.txt) differ from its "
                             f"{MANIFEST_FILE}'s ({len(manifest['class_names'])}); {_REWRITE}")


def written_files(folder: Path, manifest: dict | None, legacy: list[str]) -> list[Path]:
    """The files a previous `alexnet shards` wrote in `folder`: the manifest's shards, classes.txt and
    the manifest; without a manifest, `legacy` (the shard-NNNNNN.tar names it always used)."""
    names = [entry["file"] for entry in manifest["shards"]] + [MANIFEST_FILE] if manifest else list(legacy)
    return [folder / name for name in names + [CLASSES_FILE] if (folder / name).is_file()]
