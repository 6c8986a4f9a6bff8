"""Exceptions for bad user input, and the close-match helper their messages use.

The CLI turns every :class:`AlexnetLabError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AlexnetLabError(Exception):
    """Base class: an error the user can fix; its message says what to do."""


class UserInputError(AlexnetLabError, ValueError):
    """A flag, name or argument that is not valid."""


class LayoutError(AlexnetLabError, ValueError):
    """Weights whose keys or shapes do not match the canonical layout of a variant."""


class WeightFormatError(AlexnetLabError, ValueError):
    """A weight file that cannot be read: wrong format, truncated, corrupt or unsafe."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> UserInputError:
    """Build the standard 'unknown X' error with the valid choices and a close match."""
    choices = sorted(choices)
    return UserInputError(
        f"unknown {kind} '{name}'; expected one of: {', '.join(choices)}.{did_you_mean(name, choices)}"
    )


class TrainingError(AlexnetLabError):
    """Training cannot go on (the loss diverged, a run folder is inconsistent)."""
