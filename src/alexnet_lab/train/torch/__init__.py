"""The PyTorch-specific parts of training: the step and loop (:mod:`.loop`), the uint8-store
loader (:mod:`.data`), DistributedDataParallel (:mod:`.distributed`) and checkpoints."""

from alexnet_lab.train.torch.trainer import train_run

__all__ = ["train_run"]
