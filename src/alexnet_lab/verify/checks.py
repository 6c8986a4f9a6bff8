"""Check results and the verification report: plain frozen records, no I/O.

A check has a name, a status (PASS, WARN, FAIL or SKIP), a one-line detail a person reads and
figures a program reads (the numbers behind the verdict). The report passes when no check FAILs;
WARN flags something unusual that is not proof of a broken file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
STATUSES = (PASS, WARN, FAIL, SKIP)
_RESERVED = ("name", "status", "detail")
NOT_FINITE = "the weights hold NaN/Inf (see 'finite')"  # why the checks that run the model are skipped


@dataclass(frozen=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: short stable name, e.g. 'finite' or 'framework-parity'.
        status: PASS, WARN, FAIL or SKIP.
        detail: one line saying what was found (and, on failure, where).
        figures: the numbers behind the verdict, JSON-serialisable.
    """

    name: str
    status: str
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:  # a programming error, not user input
            raise ValueError(f"unknown check status {self.status!r}")
        clash = [key for key in self.figures if key in _RESERVED]
        if clash:
            raise ValueError(f"figure names {clash} clash with the check's own fields")

    def to_dict(self) -> dict[str, Any]:
        """{"name", "status", "detail", **figures}."""
        return {"name": self.name, "status": self.status, "detail": self.detail, **self.figures}


@dataclass(frozen=True)
class VerifyReport:
    """Every check run on one weight source."""

    weights: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the checks that FAILed."""
        return tuple(check.name for check in self.checks if check.status == FAIL)

    def status_of(self, name: str) -> str:
        """The status of the named check ('' when it did not run)."""
        return next((check.status for check in self.checks if check.name == name), "")

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "passed": self.passed, "checks": [check.to_dict() for check in self.checks]}


def skipped(names: Iterable[str], reason: str) -> list[Check]:
    """SKIP results for checks that could not run, all for the same reason."""
    return [Check(name, SKIP, reason) for name in names]


def worst(statuses: Iterable[str]) -> str:
    """FAIL over WARN over PASS; SKIP only when nothing else ran."""
    found = set(statuses)
    for status in (FAIL, WARN, PASS):
        if status in found:
            return status
    return SKIP


def preview(items: list[str], limit: int = 4) -> str:
    """'a; b; c; d (+3 more)' — keeps a detail on one readable line."""
    shown = "; ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
