"""Hash check: is this the registry file it claims to be?

The weights are matched to a registry entry by the name given on the command line (a registry
name or the entry's file name, e.g. `alexnet-owt-7be5be79.pth`) or by the source recorded in the
metadata of a converted file. The sha256 compared is ``meta.source_sha256``: the digest of the
file itself for files without metadata, the digest of the original for converted files.
Expected values come from the entry (full sha256, or the prefix torchvision puts in its file
names) or, for entries without a published hash (bvlc), from the trust-on-first-use record the
downloader keeps in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.verify.checks import FAIL, PASS, SKIP, Check
from alexnet_lab.weights.download import cache_path, hash_record_path
from alexnet_lab.weights.registry import ENTRIES, WeightEntry

NAME = "hash"


def find_entry(bundle: WeightBundle, weights: str | os.PathLike[str],
               entries: Iterable[WeightEntry] | None = None) -> WeightEntry | None:
    """The registry entry the weights come from, or None when they are not a registry file."""
    text = str(weights).strip()
    names = {text.lower(), Path(text).name, bundle.meta.source.strip(), bundle.meta.source.strip().lower()}
    for entry in entries if entries is not None else ENTRIES.values():
        if names & {*entry.names, entry.filename}:
            return entry
    return None


def _recorded_hash(entry: WeightEntry) -> str:
    """The digest recorded at the first download of an entry without a published hash, or ''."""
    try:
        words = hash_record_path(cache_path(entry)).read_text("ascii").split()
    except (OSError, UnicodeDecodeError):
        return ""
    return words[0].lower() if words else ""


def check_hash(bundle: WeightBundle, weights: str | os.PathLike[str],
               entries: Iterable[WeightEntry] | None = None) -> Check:
    """PASS when the sha256 matches the registry entry (full hash, or its published prefix)."""
    digest = bundle.meta.source_sha256.lower()
    entry = find_entry(bundle, weights, entries)
    figures = {"sha256": digest, "registry": entry.name if entry else ""}
    if entry is None:
        source = bundle.meta.source or weights
        return Check(NAME, SKIP, f"not a registry file (source '{source}'); sha256 {digest or 'unknown'}", figures)
    if not digest:
        return Check(NAME, SKIP, f"registry '{entry.name}' file, but the weights carry no source sha256", figures)
    expected, origin = entry.sha256 or entry.sha256_prefix, f"registry '{entry.name}'"
    if not expected:
        expected, origin = _recorded_hash(entry), f"the hash recorded at the first download of '{entry.name}'"
    if not expected:
        return Check(NAME, SKIP, f"no published sha256 for '{entry.name}' and none recorded; sha256 {digest}", figures)
    figures["expected"] = expected
    kind = "full sha256" if len(expected) == 64 else f"the {len(expected)}-digit prefix"
    if digest.startswith(expected):
        return Check(NAME, PASS, f"sha256 {digest[:16]}... matches {kind} from {origin}", figures)
    return Check(NAME, FAIL, f"sha256 {digest[:16]}... does not match {kind} {expected[:16]} from {origin}: "
                 "not the published file (corrupt, modified or a different file)", figures)
