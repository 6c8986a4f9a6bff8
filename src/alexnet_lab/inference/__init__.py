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
    from alexnet_lab.inference import predict

    return getattr(predict, name)  # predict's own __getattr__ warns for the names that moved
