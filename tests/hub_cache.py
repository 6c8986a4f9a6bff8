"""A Hugging Face Hub cache built on disk in huggingface_hub's own layout, for offline tests.

    CACHE/models--OWNER--REPO/blobs/<git sha1, or sha256 for large (LFS) files>
    CACHE/models--OWNER--REPO/snapshots/<commit>/<file> -> ../../blobs/<hash>   (relative symlinks)
    CACHE/models--OWNER--REPO/refs/<branch or tag>      the commit, no newline

as huggingface_hub.file_download writes it (repo_folder_name, _create_symlink,
_cache_commit_hash_for_specific_revision); HF_HUB_CACHE=CACHE and HF_HUB_OFFLINE=1 then read it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above this in LFS: their blob is named by sha256


def _blob_name(data: bytes) -> str:
    if len(data) > LFS_THRESHOLD:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def add_revision(cache: Path, repo_id: str, commit: str, files: dict[str, Path | bytes],
                 refs: tuple[str, ...] = ()) -> Path:
    """Put `files` (name -> path or bytes) into the cache as `commit` of `repo_id`; point `refs` at it."""
    assert len(commit) == 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for name, content in files.items():
        data = content if isinstance(content, bytes) else Path(content).read_bytes()
        blob = repo / "blobs" / _blob_name(data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def add_folder(cache: Path, repo_id: str, commit: str, folder: Path, refs: tuple[str, ...] = ()) -> Path:
    """Every file of `folder` (as `alexnet convert --to hf` wrote it) as one commit."""
    return add_revision(cache, repo_id, commit, {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}, refs)
