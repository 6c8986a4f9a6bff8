"""Learning-rate schedules as pure functions of the step, shared by both training loops."""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int = 0, step_every: int = 0) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based).

    Args:
        step: the current step.
        total_steps: steps in the phase.
        schedule: 'cosine' (to 0), 'onecycle' (linear up over the warmup, then linear down to 0),
            'step' (x0.1 every `step_every` steps) or 'constant'.
        warmup_steps: linear warm-up from ~0 to 1 (cosine, step, constant, onecycle's rise).
        step_every: steps between decays for 'step'.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "onecycle":
        return max(0.0, 1.0 - progress)
    if schedule == "step":
        return 0.1 ** ((step - warmup_steps) // max(1, step_every))
    return 1.0
