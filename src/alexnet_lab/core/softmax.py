"""Softmax, the one implementation: predict's probabilities, explain's, the training run's samples,
evaluation's cross-entropy and view averaging all ask here, so they cannot disagree.

Every exponent is of a logit minus its row's maximum, so it is <= 0: no overflow at any logit scale.
"""

from __future__ import annotations

import numpy as np


def logsumexp(logits: np.ndarray) -> np.ndarray:
    """log(sum(exp(row))) of every row of an (N, C) array, in the array's own float type."""
    peak = logits.max(axis=1)
    return peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, in float64."""
    shifted = np.exp(np.asarray(logits, np.float64) - np.max(logits, axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


__all__ = ["logsumexp", "softmax"]
