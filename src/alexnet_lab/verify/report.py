"""Rendering a VerifyReport: an aligned table for people, one JSON object for programs."""

from __future__ import annotations

import json
import math
import textwrap
from collections import Counter
from typing import Any

from alexnet_lab.verify.checks import STATUSES, VerifyReport

DETAIL_WIDTH = 88  # characters of detail per line; longer details wrap under the DETAIL column


def render_table(report: VerifyReport, width: int = DETAIL_WIDTH) -> str:
    """CHECK / STATUS / DETAIL columns, then one summary line."""
    name_width = max([len("CHECK"), *(len(check.name) for check in report.checks)])
    indent = " " * (name_width + 2 + 6 + 2)
    lines = [f"{'CHECK':<{name_width}}  STATUS  DETAIL"]
    for check in report.checks:
        wrapped = textwrap.wrap(check.detail, width) or [""]
        lines.append(f"{check.name:<{name_width}}  {check.status:<6}  {wrapped[0]}")
        lines.extend(indent + more for more in wrapped[1:])
    counts = Counter(check.status for check in report.checks)
    tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    verdict = "PASSED" if report.passed else f"FAILED ({', '.join(report.failed)})"
    lines.append(f"{report.weights}: {verdict} — {len(report.checks)} checks: {tally}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN and infinities (e.g. the difference to a damaged tensor) as strings: strict JSON has none."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def render_json(report: VerifyReport) -> str:
    """{"weights": ..., "passed": bool, "checks": [{"name", "status", "detail", ...figures}]}."""
    return json.dumps(_json_safe(report.to_dict()), indent=2, allow_nan=False)
