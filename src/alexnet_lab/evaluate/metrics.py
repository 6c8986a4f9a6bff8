"""Classification metrics from logits: top-1, top-k, cross-entropy, per-class accuracy, confusion.

Framework-neutral (numpy only): both training loops hand over logits and labels as numpy arrays,
batch by batch, through :class:`EvalAccumulator`, so a large validation set never needs all its
logits in memory at once.

Definitions, chosen so the numbers agree with each other:
- the prediction is ``argmax(logits)``; ties go to the lowest class index (numpy's argmax);
- top-k counts a hit when fewer than k classes outrank the true class, where class j outranks
  the true class y if ``logit_j > logit_y``, or ``logit_j == logit_y and j < y``. That is the
  same tie rule, so top-1 equals the trace of the confusion matrix over N;
- k is ``min(5, C)``: with fewer than five classes "top-5" is over all classes (so it is 1.0);
- loss is the mean of ``logsumexp(logits) - logits[label]`` computed in float64;
- a class with no samples has accuracy ``None`` (``null`` in JSON), never 0 or NaN: "not
  measured" is not "always wrong", and NaN is not valid JSON.
Non-finite logits are rejected: they mean the model diverged, and every metric would be garbage.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import atomic_path
from alexnet_lab.core.softmax import logsumexp

TOP_K = 5  # the "top-5" of the ImageNet literature; capped at the number of classes


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one model on one labelled split.

    Attributes:
        top1: fraction of images whose argmax is the label, in [0, 1].
        top5: fraction of images whose label is among the top ``min(5, C)`` logits, in [0, 1].
        loss: mean cross-entropy of the softmax of the logits (natural log).
        num_images: N, the number of images evaluated.
        per_class: class name -> accuracy (recall) in [0, 1], or None for a class with no images.
        confusion: C x C counts; row = true class, column = predicted class (class_names order).
        class_names: the C class names, in label order.
    """

    top1: float
    top5: float
    loss: float
    num_images: int
    per_class: Mapping[str, float | None]
    confusion: tuple[tuple[int, ...], ...]
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """C, the number of classes."""
        return len(self.class_names)

    @property
    def top5_k(self) -> int:
        """The k actually used for ``top5``: ``min(5, C)``."""
        return min(TOP_K, self.num_classes)

    @property
    def support(self) -> dict[str, int]:
        """Class name -> number of images of that class (the confusion row sums)."""
        return {name: int(sum(row)) for name, row in zip(self.class_names, self.confusion)}

    def confusion_matrix(self) -> np.ndarray:
        """The confusion matrix as a (C, C) int64 array."""
        return np.asarray(self.confusion, dtype=np.int64).reshape(self.num_classes, self.num_classes)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``evaluate --json`` object: plain JSON types, per-class ``None`` kept as null."""
        return {
            "top1": self.top1,
            "top5": self.top5,
            "top5_k": self.top5_k,
            "loss": self.loss,
            "num_images": self.num_images,
            "per_class": dict(self.per_class),
            "per_class_count": self.support,
            "confusion": [list(row) for row in self.confusion],
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any], source: str = "evaluation JSON") -> EvalResult:
        """Rebuild a result from :meth:`to_json_dict` output (``class_names`` may be absent).

        Raises:
            UserInputError: a key is missing or the confusion matrix does not match the classes.
        """
        missing = [key for key in ("top1", "top5", "loss", "num_images", "per_class", "confusion") if key not in data]
        if missing:
            raise UserInputError(
                f"{source} lacks {', '.join(missing)}; expected the output of `alexnet evaluate --json`."
            )
        try:
            names = tuple(str(n) for n in data.get("class_names") or list(data["per_class"]))
            confusion = tuple(tuple(int(v) for v in row) for row in data["confusion"])
            per_class = {name: _optional_float(data["per_class"].get(name)) for name in names}
            scalars = (float(data["top1"]), float(data["top5"]), float(data["loss"]), int(data["num_images"]))
        except (TypeError, ValueError, AttributeError) as exc:
            problem = f"{source} has a malformed value ({exc})"
            raise UserInputError(f"{problem}; re-run the evaluation to rewrite it.") from None
        if len(confusion) != len(names) or any(len(row) != len(names) for row in confusion):
            raise UserInputError(
                f"{source} has a confusion matrix that is not {len(names)}x{len(names)} for its {len(names)} classes."
            )
        return cls(*scalars, per_class=per_class, confusion=confusion, class_names=names)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(str(name) for name in class_names)
    if not names:
        raise UserInputError("expected at least one class name; received an empty list.")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserInputError(f"expected unique class names; received duplicates {duplicates[:5]}. Rename them.")
    return names


def _label_vector(labels: Any, logits_shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape == logits_shape:
        labels = labels.argmax(axis=1)  # one-hot (or smoothed) targets, as Keras recipes use
    if labels.shape != logits_shape[:1]:
        raise UserInputError(
            f"expected labels of shape ({logits_shape[0]},) or {logits_shape}; received {labels.shape}."
        )
    if labels.size == 0:
        return labels.astype(np.int64)
    integral = labels.dtype.kind in "iu" or (labels.dtype.kind == "f" and bool(np.all(np.mod(labels, 1) == 0)))
    if not integral or labels.min() < 0 or labels.max() >= num_classes:
        raise UserInputError(
            f"expected integer labels in [0, {num_classes - 1}]; received dtype {labels.dtype}, "
            f"range [{labels.min()}, {labels.max()}]."
        )
    return labels.astype(np.int64)


def _check_batch(logits: Any, labels: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise UserInputError(f"expected logits of shape (N, {num_classes}); received shape {logits.shape}.")
    labels = _label_vector(labels, logits.shape, num_classes)
    bad = int(np.count_nonzero(~np.isfinite(logits)))
    if bad:
        raise UserInputError(
            f"logits contain {bad} NaN or infinite values; the model has diverged (lower the learning rate)."
        )
    return logits, labels


def _cross_entropy_sum(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logsumexp(logits) - logits[np.arange(len(labels)), labels]).sum())


def _outranking_counts(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    true_logit = logits[np.arange(len(labels)), labels][:, None]
    lower_index = np.arange(logits.shape[1])[None, :] < labels[:, None]
    return ((logits > true_logit) | ((logits == true_logit) & lower_index)).sum(axis=1)


class EvalAccumulator:
    """Streaming metrics: call :meth:`update` once per batch, then :meth:`result`.

    Holds only running sums and the C x C confusion counts, whatever the number of images.
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        """Start empty for the given classes (label i is ``class_names[i]``)."""
        self.class_names = _check_class_names(class_names)
        num_classes = len(self.class_names)
        self._k = min(TOP_K, num_classes)
        self._confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._loss_sum = 0.0
        self._top_k_hits = 0

    @property
    def num_images(self) -> int:
        """Images seen so far."""
        return int(self._confusion.sum())

    def update(self, logits: Any, labels: Any) -> None:
        """Add one batch.

        Args:
            logits: (N, C) floats (pre-softmax; any real scale).
            labels: (N,) class indices in [0, C) (integral floats accepted), or (N, C) one-hot
                targets, reduced with argmax.

        Raises:
            UserInputError: wrong shapes, labels out of range, or NaN/infinite logits.
        """
        num_classes = len(self.class_names)
        logits, labels = _check_batch(logits, labels, num_classes)
        if not len(labels):
            return
        predicted = logits.argmax(axis=1)
        cells = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
        self._confusion += cells.reshape(num_classes, num_classes)
        self._loss_sum += _cross_entropy_sum(logits, labels)
        self._top_k_hits += int(np.count_nonzero(_outranking_counts(logits, labels) < self._k))

    def result(self) -> EvalResult:
        """The metrics of every batch so far.

        Raises:
            UserInputError: no image was added.
        """
        total = self.num_images
        if total == 0:
            raise UserInputError("no images were evaluated; expected at least one labelled image in the split.")
        rows = self._confusion.sum(axis=1)
        diagonal = np.diag(self._confusion)
        per_class = {
            name: (float(diagonal[i] / rows[i]) if rows[i] else None) for i, name in enumerate(self.class_names)
        }
        return EvalResult(
            top1=float(diagonal.sum() / total),
            top5=float(self._top_k_hits / total),
            loss=self._loss_sum / total,
            num_images=total,
            per_class=per_class,
            confusion=tuple(tuple(int(v) for v in row) for row in self._confusion),
            class_names=self.class_names,
        )


def evaluate_logits(logits: Any, labels: Any, class_names: Sequence[str], batch_size: int = 4096) -> EvalResult:
    """Metrics of all ``logits`` (N, C) against ``labels`` (N,), in chunks of ``batch_size`` rows."""
    accumulator = EvalAccumulator(class_names)
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2:
        accumulator.update(logits, labels)  # raises the shape error
    step = max(1, int(batch_size))
    for start in range(0, len(logits), step):
        accumulator.update(logits[start : start + step], labels[start : start + step])
    return accumulator.result()


def write_eval_json(result: EvalResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result.to_json_dict()`` to ``path`` atomically (no partial file on a crash)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(result.to_json_dict(), indent=2) + "\n", encoding="utf-8")
    return target


def read_eval_json(path: str | os.PathLike[str]) -> EvalResult:
    """Read an evaluation JSON written by :func:`write_eval_json` (or ``evaluate --json``).

    Raises:
        UserInputError: the file is missing, not JSON, or lacks the expected keys.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"no evaluation file at {source}; run `alexnet evaluate` first.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"cannot read {source} as JSON ({exc}); re-run the evaluation to rewrite it.") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{source} holds a {type(data).__name__}; expected a JSON object of metrics.")
    return EvalResult.from_json_dict(data, source=str(source))


def is_finite_number(value: Any) -> bool:
    """True for an int/float that is neither NaN nor infinite (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
