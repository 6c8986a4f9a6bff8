"""Using a trained model: prediction on images at fp32, bf16 or int8 (:mod:`.predict`), and
deployment exports to ONNX, TorchScript, torch.export and SavedModel (:mod:`.export`).

Both reach the frameworks through :func:`alexnet_lab.frameworks.get_backend` only.
"""

from alexnet_lab.inference.predict import (
    Prediction,
    build_for,
    inference_model,
    logits_for_images,
    predict_images,
    resolve_precision,
    top_k,
)

__all__ = ["Prediction", "build_for", "inference_model", "logits_for_images", "predict_images", "resolve_precision",
           "top_k"]


def __getattr__(name: str):
    if name == "softmax":  # moved to core.softmax, its one home
        import warnings

        from alexnet_lab.core.softmax import softmax

        warnings.warn("alexnet_lab.inference.softmax moved to alexnet_lab.core.softmax.softmax",
                      DeprecationWarning, stacklevel=2)
        return softmax
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
