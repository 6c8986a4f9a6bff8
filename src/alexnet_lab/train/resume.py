"""--resume continues exactly the run recorded in RUN/config.json.

The flags given with --resume must match that config; the changes allowed are a larger
--epochs, which extends the run, and where it runs (--device, --num-workers, --data-dir); both
are recorded in config.json under "extensions". The framework
comes from config.json too, read before any framework is imported (PyTorch and TensorFlow must
never share a training process).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.run_folder import RunFolder
from alexnet_lab.train.config import RunConfig

# where the run is, not what it is: these never count as a change
LOCATION_FIELDS = ("resume", "out")
# where and with what the run executes, not what it computes: these may change on resume (a run
# started on a GPU continues on a CPU-only machine, the data moved to another disk), and the
# change is recorded with the extension
RUNTIME_FIELDS = ("device", "num_workers", "data_dir")


def saved_config(run_dir: Path) -> RunConfig:
    """The RunConfig recorded in RUN/config.json."""
    path = RunFolder(run_dir).config
    if not path.is_file():
        raise UserInputError(f"--resume: '{run_dir}' is not a run folder (no config.json); check --out.")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:  # UserInputError is a ValueError: say which file it is about
        raise UserInputError(f"--resume: {path} does not hold a valid run configuration: {exc}") from None


def _normal(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) or "(none)"
    return str(value)


def differences(saved: RunConfig, given: Mapping[str, Any]) -> list[str]:
    """'--flag NEW (the run has OLD)' for each given flag that changes the run; a larger --epochs
    is not a change."""
    found = []
    for name, value in sorted(given.items()):
        if name in LOCATION_FIELDS or name in RUNTIME_FIELDS or name == "extra":
            continue
        old = getattr(saved, name)
        if name == "epochs" and isinstance(value, int) and value >= old:
            continue
        if _normal(value) != _normal(old):
            note = "; --epochs can only grow" if name == "epochs" else ""
            found.append(f"--{name.replace('_', '-')} {_shown(value)} (the run has {_shown(old)}{note})")
    return found


def resume_config(config: RunConfig, given: Mapping[str, Any] | None) -> tuple[RunConfig, dict | None]:
    """(the run's own config to continue, the epoch extension to record or None).

    Args:
        config: what the command line resolved; only `out` is used.
        given: the flags passed explicitly with --resume (field -> value), None for none.
    Raises:
        UserInputError: naming every given flag that differs from the run's config.
    """
    saved = saved_config(Path(config.out))
    given = dict(given or {})
    found = differences(saved, given)
    if found:
        raise UserInputError(f"--resume continues the run in '{config.out}' exactly as configured, but these flags "
                             f"differ from its config.json: {'; '.join(found)}. Drop them (only a larger --epochs "
                             "may extend a run; --device, --num-workers and --data-dir may change), or start a new "
                             "run with another --out.")
    epochs = int(given.get("epochs", saved.epochs))
    runtime = {name: given[name] for name in RUNTIME_FIELDS if name in given and given[name] != getattr(saved, name)}
    extension = None
    if epochs > saved.epochs or runtime:
        extension = {"from_epochs": saved.epochs, "to_epochs": epochs,
                     "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if runtime:
            extension["runtime"] = {name: {"was": getattr(saved, name), "now": value} for name, value in runtime.items()}
    return replace(saved, resume=True, out=config.out, epochs=epochs, **runtime), extension


def config_document(run_dir: Path, config: RunConfig, extension: dict | None) -> str:
    """config.json's text: the config, keeping what earlier starts recorded (resolved settings,
    earlier extensions) and adding this start's extension."""
    path = RunFolder(run_dir).config
    doc = json.loads(path.read_text()) if config.resume and path.is_file() else {}
    doc.update(config.to_dict())
    if extension is not None:
        doc["extensions"] = [*doc.get("extensions", []), extension]
    return json.dumps(doc, indent=2, sort_keys=True)
