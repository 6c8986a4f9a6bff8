"""alexnet-lab: AlexNet in PyTorch and Keras 3 with weights that are provably the same model.

The framework-neutral pieces live in :mod:`alexnet_lab.core`; the framework adapters
(:mod:`alexnet_lab.torch_backend`, :mod:`alexnet_lab.keras_backend`) are imported only when used.
"""

__version__ = "0.1.0"
