"""Framework-neutral evaluation and reporting, shared by the PyTorch and the Keras training loops.

- :mod:`.metrics`: top-1/top-5, cross-entropy, per-class accuracy and the confusion matrix from
  logits, in one pass (:func:`evaluate_logits`) or batch by batch (:class:`EvalAccumulator`).
- :mod:`.plots`: training curves, confusion heat map and sample-prediction grid as PNG files.
- :mod:`.run_folders`: reading a training run folder (:func:`load_run`) and drawing plots it lacks.
- :mod:`.dataset_eval`: weights evaluated on a data set (`alexnet evaluate`), any framework and precision.
- :mod:`.report`: a Markdown + self-contained HTML report comparing runs (:func:`write_report`).

Importing this package loads numpy and the standard library only; matplotlib and PIL are
imported inside the functions that draw.
"""

from alexnet_lab.evaluate.metrics import (
    EvalAccumulator,
    EvalResult,
    evaluate_logits,
    read_eval_json,
    write_eval_json,
)
from alexnet_lab.evaluate.plots import plot_confusion, plot_curves, plot_samples
from alexnet_lab.evaluate.report import write_report
from alexnet_lab.evaluate.run_folders import (
    RunSummary,
    SamplePrediction,
    SampleSet,
    ensure_plots,
    load_run,
    read_metrics_jsonl,
    read_samples_json,
)

__all__ = [
    "EvalAccumulator",
    "EvalResult",
    "RunSummary",
    "SamplePrediction",
    "SampleSet",
    "ensure_plots",
    "evaluate_logits",
    "load_run",
    "plot_confusion",
    "plot_curves",
    "plot_samples",
    "read_eval_json",
    "read_metrics_jsonl",
    "read_samples_json",
    "write_eval_json",
    "write_report",
]
