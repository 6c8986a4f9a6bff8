"""alexnet-lab: AlexNet in PyTorch and Keras 3 with weights that are provably the same model.

The framework-neutral pieces live in :mod:`alexnet_lab.core`; the framework adapters
(:mod:`alexnet_lab.torch_backend`, :mod:`alexnet_lab.keras_backend`) are imported only when used.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`alexnet_lab.create_model` / `list_models` (timm's names), imported on first use: importing
    the package itself loads no framework."""
    if name == "create_model":
        from alexnet_lab.torch_backend.hub import create_model

        return create_model
    if name == "list_models":
        from alexnet_lab.core.hub import list_models

        return list_models
    raise AttributeError(f"module 'alexnet_lab' has no attribute '{name}'")
