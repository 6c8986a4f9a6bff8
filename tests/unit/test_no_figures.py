"""Code carries no measurements (STYLE.md: "Code docstrings carry no figures"): speeds and
accuracies live in docs/ (performance.md, training.md, recipes.md), dated, with their machine kind;
a docstring or comment says what was measured and points there."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "alexnet_lab"

# a speed (img/s, GFLOP/s, milliseconds, N x faster / slower / of eager) or an accuracy
# (a percentage with decimals, or "about N%")
FIGURE = re.compile(r"\d\s?(img/s|images/s|GFLOP/s)|\b\d+(\.\d+)? ms\b|\d(\.\d+)?x (faster|slower|of eager)"
                    r"|\b\d+\.\d+%|about \d+%")
FORMAT = re.compile(r"%[-.0-9]*[dfgs]|%%")  # a printf format on the line: a log message, not a figure

# Files that still hold figures, each for a reason; the list shrinks, it does not grow.
ALLOWED: set[str] = set()


def figures() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        hits = [f"{rel}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
                if FIGURE.search(line) and not FORMAT.search(line)]
        if hits:
            found[rel] = hits
    return found


def test_no_figures_in_code():
    found = {rel: hits for rel, hits in figures().items() if rel not in ALLOWED}
    assert not found, ("figures in code (move them to docs/ and point there):\n"
                       + "\n".join(h for hits in found.values() for h in hits))


def test_the_allow_list_is_not_stale():
    found = figures()
    assert not [rel for rel in ALLOWED if rel not in found], "remove from ALLOWED: no figure left"
