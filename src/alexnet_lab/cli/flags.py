"""Help texts several commands share, so that every command describes a flag in the same words."""

from __future__ import annotations

from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK, ENTRIES, NAMES, export_frameworks

# what every command that reads weights accepts (weights.files.load_weights' sources)
WEIGHTS_HELP = "registry name, weight file / run folder, or hf://OWNER/REPO[@REVISION]"
# the order frameworks.*.device tries for 'auto'
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps"


def framework_names(conjunction: str = "or", default: str | None = DEFAULT_FRAMEWORK) -> str:
    """The registry's framework names in words, the default marked: 'torch (default) or keras';
    with default=None unmarked, and conjunction 'and/or' for flags that take several."""
    names = [f"{name} (default)" if name == default else name for name in NAMES]
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}" if len(names) > 1 else names[0]


# --framework of the commands that run one model (predict, evaluate, features, explain)
FRAMEWORK_HELP = framework_names()
# --frameworks of the commands that run every framework by default (serve, benchmark)
ALL_FRAMEWORKS = "both" if len(NAMES) == 2 else "all"
FRAMEWORKS_HELP = f"{framework_names('and/or', default=None)} (default {ALL_FRAMEWORKS})"


def export_framework_help() -> str:
    """convert --framework: each framework with its models' input layout, and each export format's
    default model where it is not the default framework's (a format only another one exports)."""
    layouts = " or ".join(f"{entry.name} ({entry.input_layout} input)" for entry in ENTRIES.values())
    formats = dict.fromkeys(fmt for entry in ENTRIES.values() for fmt, _ in entry.exports)
    others = "".join(f", {export_frameworks(fmt)[0]} for {fmt}" for fmt in formats
                     if export_frameworks(fmt)[0] != DEFAULT_FRAMEWORK)
    return f"export formats only: which model is exported, {layouts}; default {DEFAULT_FRAMEWORK}{others}"
