"""Weights on the Hugging Face Hub: `hf://OWNER/REPO[@REVISION]` (and timm's `hf-hub:OWNER/REPO`).

A Hub reference names the repository's `model.safetensors` (the canonical file with our metadata,
as `alexnet convert W OUT_DIR --to hf` writes it) at a revision: a branch, a tag or a commit
(default: main). It is fetched through huggingface_hub's own cache (`hf_hub_download`), so
HF_HUB_CACHE / HF_HOME and HF_HUB_OFFLINE mean what they mean for every Hub library, and
load_weights then reads the cached file like any other. huggingface_hub is imported only here
and only when a reference is resolved.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.version import __version__

PREFIXES = ("hf://", "hf-hub:")  # ours, and timm's spelling (create_model("hf-hub:owner/repo"))
WEIGHTS_FILE = "model.safetensors"
# huggingface_hub's repo-id rule (validate_repo_id): letters, digits, '-', '_', '.'; no '--' or '..'
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


@dataclass(frozen=True)
class HubRef:
    """A model repository on the Hub and an optional revision (None: the default branch)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_ref(source: object) -> bool:
    """True when `source` is a string spelled as a Hub reference (hf://... or hf-hub:...)."""
    return isinstance(source, str) and source.strip().lower().startswith(PREFIXES)


def parse_hub_ref(source: str) -> HubRef:
    """`hf://OWNER/REPO[@REVISION]` or `hf-hub:OWNER/REPO[@REVISION]` -> HubRef.

    Raises:
        UserInputError: not OWNER/REPO, a name the Hub does not allow, or an empty revision.
    """
    text = source.strip()
    body = text[next(len(p) for p in PREFIXES if text.lower().startswith(p)):]
    repo_id, at, revision = body.partition("@")
    parts = repo_id.split("/")
    bad = len(parts) != 2 or not all(_NAME.fullmatch(p) and "--" not in p and ".." not in p for p in parts)
    if bad or (at and not revision.strip()) or any(c.isspace() for c in revision):
        raise UserInputError(f"expected a Hub reference hf://OWNER/REPO or hf://OWNER/REPO@REVISION (a branch, tag or "
                             f"commit); received '{source}'. Check the repository name on huggingface.co.")
    return HubRef(repo_id, revision or None)


def _offline() -> bool:
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if is_offline else constants.HF_HUB_OFFLINE)


def _cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _repo_cache(ref: HubRef) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return Path(_cache_dir()) / repo_folder_name(repo_id=ref.repo_id, repo_type="model")


def cached_snapshot(ref: HubRef) -> Path | None:
    """The snapshot folder of `ref` in the local cache (the revision read through refs/), or None."""
    repo = _repo_cache(ref)
    revision = ref.revision or "main"
    ref_file = repo / "refs" / revision
    commit = ref_file.read_text().strip() if ref_file.is_file() else revision
    snapshot = repo / "snapshots" / commit
    return snapshot if re.fullmatch(r"[0-9a-f]{40}", commit) and snapshot.is_dir() else None


def _cached_names(snapshot: Path) -> list[str]:
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())


def cached_weights(ref: HubRef) -> Path | None:
    """The cached model.safetensors of `ref`, without any network access (None when not cached)."""
    snapshot = cached_snapshot(ref)
    path = snapshot / WEIGHTS_FILE if snapshot is not None else None
    return path if path is not None and path.is_file() else None


def _holds(ref: HubRef, names: list[str]) -> str:
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (f"{ref} holds no {WEIGHTS_FILE} ({shown or 'no files'}); alexnet-lab reads the {WEIGHTS_FILE} that "
            "`alexnet convert W OUT_DIR --to hf` writes: convert the weights and upload that folder, or pass another "
            "repository.")


def _not_cached(ref: HubRef) -> str:
    snapshot = cached_snapshot(ref)
    if snapshot is not None:  # the revision is cached, the file is not: say what it holds
        return _holds(ref, _cached_names(snapshot))
    refs = _repo_cache(ref) / "refs"
    cached = sorted(str(p.relative_to(refs)) for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else []
    if cached:  # the repository is cached at other revisions
        where = f"revision '{ref.revision or 'main'}' of {ref.repo_id} is not in the Hugging Face cache (cached: " \
                f"{', '.join(cached[:5])})"
    else:
        where = f"{ref} is not in the Hugging Face cache ({_cache_dir()})"
    fetch = f"hf download {ref.repo_id} {WEIGHTS_FILE}" + (f" --revision {ref.revision}" if ref.revision else "")
    return (f"{where} and HF_HUB_OFFLINE is set; fetch it first with "
            f"`{fetch}` (huggingface-cli download before huggingface_hub 0.34), or unset HF_HUB_OFFLINE.")


def _remote_names(ref: HubRef) -> list[str]:
    try:
        from huggingface_hub import HfApi

        return sorted(HfApi().list_repo_files(ref.repo_id, revision=ref.revision))
    except Exception:  # the listing is only for the message; the missing file is the error
        return []


def hub_download(ref: HubRef) -> Path:
    """The local path of `ref`'s model.safetensors, downloaded into the Hub cache when needed.

    Raises:
        UserInputError: one line for every way it can fail: not cached while offline, no such
            repository / revision (or gated), no model.safetensors there (with what it holds), no
            connection.
    """
    from huggingface_hub import errors as hub_errors
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(ref.repo_id, WEIGHTS_FILE, revision=ref.revision, library_name="alexnet-lab",
                                    library_version=__version__))
    except hub_errors.LocalEntryNotFoundError:
        if _offline():
            raise UserInputError(_not_cached(ref)) from None
        raise UserInputError(f"cannot reach the Hugging Face Hub for {ref} and it is not in the cache ({_cache_dir()}); "
                             "check the connection (HF_ENDPOINT, proxies) and try again.") from None
    except hub_errors.GatedRepoError:
        raise UserInputError(f"{ref} is a gated repository; accept its terms on huggingface.co and log in with "
                             "`hf auth login` (or set HF_TOKEN).") from None
    except hub_errors.RevisionNotFoundError:
        raise UserInputError(f"{ref}: the repository has no revision '{ref.revision}'; pass an existing branch, tag "
                             "or commit after '@'.") from None
    except hub_errors.RepositoryNotFoundError:
        raise UserInputError(f"{ref}: no such model repository on the Hub (or it is private: log in with "
                             "`hf auth login` or set HF_TOKEN); check OWNER/REPO.") from None
    except hub_errors.EntryNotFoundError:
        raise UserInputError(_holds(ref, _remote_names(ref))) from None
    except (OSError, ValueError) as exc:  # HTTP errors, a read-only cache, a bad name huggingface_hub refuses
        raise UserInputError(f"cannot fetch {ref}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                             "check the name, the connection and the cache folder.") from None


def resolve(source: str | os.PathLike[str]) -> Path:
    """The local model.safetensors a Hub reference names (see hub_download)."""
    return hub_download(parse_hub_ref(str(source)))
