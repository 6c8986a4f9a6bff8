"""The Keras-specific parts of training: the compiled step (:mod:`.steps`), the loop
(:mod:`.loop`), the input pipeline (:mod:`.data`, :mod:`.augment_tf`), tf.distribute
(:mod:`.distribute`), mixed precision (:mod:`.precision`) and checkpoints."""

from alexnet_lab.train.keras.trainer import train_run

__all__ = ["train_run"]
