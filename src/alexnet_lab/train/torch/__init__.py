"""The PyTorch-specific parts of training, behind :func:`.trainer.train_run` (the FrameworkTrainer
that :func:`alexnet_lab.train.loop.fit` drives: model, optimizer, autocast step): the uint8-store
loader (:mod:`.data`), DistributedDataParallel (:mod:`.distributed`), the weights' moving average
(:mod:`.ema`) and the checkpoint file (:mod:`.checkpoint`)."""

from alexnet_lab.train.torch.trainer import train_run

__all__ = ["train_run"]
