"""PyTorch adapter: AlexNet model, canonical <-> state dict, inference helpers.

Exposes the same function names as :mod:`alexnet_lab.keras_backend`.
"""

from alexnet_lab.torch_backend.convert import from_canonical, state_dict_keys, to_canonical
from alexnet_lab.torch_backend.model import AlexNet, build_model, predict_logits

FRAMEWORK = "torch"

__all__ = ["AlexNet", "FRAMEWORK", "build_model", "from_canonical", "predict_logits", "state_dict_keys", "to_canonical"]
