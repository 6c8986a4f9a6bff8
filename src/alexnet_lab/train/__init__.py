"""Training, written once for every framework.

- :mod:`.config`, :mod:`.recipes`, :mod:`.phases`, :mod:`.schedules`: what a run is.
- :mod:`.loop`: THE loop (phases, epochs, learning-rate schedule, validation through
  evaluate.metrics, checkpoints every epoch, resume, early stop), driving a FrameworkTrainer.
- :mod:`.trainers`: get_trainer(name) -> the framework's training package (:mod:`.torch`,
  :mod:`.keras`), which holds only its step, loader, distribution and checkpoint file.
- :mod:`.job`: a run end to end (data, run folder, the framework's trainer, evaluation, plots).
- :mod:`.context`, :mod:`.folder`, :mod:`.lock`, :mod:`.resume`: the run folder, kill-safe.
- :mod:`.world`: which process of a torchrun / TF_CONFIG job this is. :mod:`.demo`: `alexnet demo`.
"""
