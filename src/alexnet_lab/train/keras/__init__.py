"""The Keras-specific parts of training, behind :func:`.trainer.train_run` (the FrameworkTrainer
that :func:`alexnet_lab.train.loop.fit` drives): the compiled step (:mod:`.steps`), the input
pipeline (:mod:`.data`, :mod:`.augment_tf`), tf.distribute (:mod:`.distribute`), mixed precision
(:mod:`.precision`), the weights' moving average (:mod:`.ema`) and the checkpoint file
(:mod:`.checkpoint`)."""

from alexnet_lab.train.keras.trainer import train_run

__all__ = ["train_run"]
