"""The one build-and-load route for Keras 3 (timm's build_model_with_cfg): :func:`build_model`
(logits out, NHWC input) and :func:`AlexNet` (the keras.applications signature: include_top,
weights, input_tensor, input_shape, pooling, classes, classifier_activation, name) both resolve
the request with weights.pretrained.plan_build, build the network of :mod:`.network` and load
through weights.pretrained.load_pretrained. Also here: running a built model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from alexnet_lab.core.precision import inference_auto
from alexnet_lab.core.spec import DEFAULT_VARIANT, ArchSpec, get_arch
from alexnet_lab.frameworks.keras import inputs, network
from alexnet_lab.frameworks.keras.convert import model_variant
from alexnet_lab.frameworks.keras.device import device_kind, resolve_device
from alexnet_lab.weights.pretrained import BuildPlan, load_pretrained, plan_build


def _route(variant, num_classes: int | None, weights, input_size: int | None, make: Callable[[BuildPlan], keras.Model],
           skip_layers: Sequence[str] = (), initialise: Callable[[keras.Model], object] | None = None,
           ) -> tuple[keras.Model, list[str]]:
    """Resolve (variant, classes, weights, size) once, build with `make`, `initialise` it, load the
    weights; returns (model, the layers that keep their fresh initialisation)."""
    plan = plan_build(variant, num_classes, weights, input_size)
    model = make(plan)
    if initialise is not None:
        initialise(model)
    if plan.bundle is None:
        return model, []
    return model, load_pretrained(model, "keras", plan.bundle, skip_layers=skip_layers)


def AlexNet(  # noqa: N802 - the keras.applications naming people know
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | None = "softmax",
    name: str = "alexnet",
    variant: str | ArchSpec | None = None,
    dropout: float = 0.5,
) -> keras.Model:
    """Build AlexNet in Keras 3, optionally loading weights.

    Args:
        include_top: include fc6-fc8; without it the output is pool5 (or pooled, see `pooling`).
        weights: None (random), a registry name ('imagenet', 'torchvision', 'bvlc') or a weight
            file path in any format the project reads.
        input_tensor: optional Keras tensor to use as the model input.
        input_shape: (height, width, channels), or (channels, height, width) under
            keras.config.image_data_format() 'channels_first'; defaults to the variant's input
            size. Any channel count without weights; None sizes without the top.
        pooling: with include_top=False: None, 'avg' or 'max' global pooling.
        classes: width of fc8; default the weights', else the variant's own. A width other than
            the weights' loads every layer but fc8.
        classifier_activation: activation of the output; None returns logits.
        name: model name.
        variant: 'owt' (torchvision layout), 'original' (2012 / Caffe), 'cifar', 'cifar-wide' or an
            ArchSpec; default the weights', else 'owt'.
        dropout: dropout rate around fc6 and fc7.
    """
    if weights is not None:  # refuse an input pretrained weights cannot take before fetching them
        inputs.resolve_input_shape(get_arch(variant or DEFAULT_VARIANT), input_shape, input_tensor, pretrained=True)
    return _route(variant, classes, weights, None, lambda plan: network.graph(
        plan.spec, include_top, input_tensor, input_shape, pooling, plan.num_classes, classifier_activation, name,
        dropout, pretrained=plan.bundle is not None))[0]


def build_model(variant: str | ArchSpec | None = None, num_classes: int | None = None, dropout: float = 0.5,
                input_size: int | None = None, *, weights: object = None, in_chans: int = 3) -> keras.Model:
    """The same route as the torch adapter's: logits out, random or loaded weights, and NHWC
    input whatever Keras' global image_data_format says (see network.logits_model). Defaults as
    frameworks.torch.model.build_model: the weights' variant and classes, else the variant's."""
    return build_and_load(variant, num_classes, dropout, input_size, weights=weights, in_chans=in_chans)[0]


def build_and_load(variant: str | ArchSpec | None = None, num_classes: int | None = None, dropout: float = 0.5,
                   input_size: int | None = None, *, weights: object = None, in_chans: int = 3,
                   skip_layers: Sequence[str] = (), initialise: Callable[[keras.Model], object] | None = None,
                   ) -> tuple[keras.Model, list[str]]:
    """build_model's route, also returning the layers not loaded (fc8 when the class count
    differs, and `skip_layers`); `initialise(model)` runs between building and loading (training
    starts from PyTorch's initialisation, see .initializers)."""
    return _route(variant, num_classes, weights, input_size, lambda plan: network.logits_model(
        plan.spec, plan.num_classes, dropout, plan.input_size, in_chans, pretrained=plan.bundle is not None),
        skip_layers, initialise)


def load_into(model: keras.Model, weights: object) -> keras.Model:
    """Load a registry name, weight file or bundle into a built model through the route's loading
    step (fc6-fc8 only when the model has its top)."""
    load_pretrained(model, "keras", plan_build(model_variant(model), None, weights).bundle)
    return model


def predict_logits(model: keras.Model, batch_nhwc: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Logits (float32 numpy) for a preprocessed N x H x W x 3 batch, in inference mode.

    predict_on_batch runs the model's compiled predict function (traced once per model), which is
    several times faster than calling the model eagerly batch after batch.
    """
    outputs = [np.asarray(model.predict_on_batch(batch_nhwc[i : i + batch_size]))
               for i in range(0, len(batch_nhwc), batch_size)]
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0, model.output_shape[-1]), np.float32)


def to_device(model: keras.Model, device: str = "auto") -> keras.Model:
    """Apply --device (TensorFlow places the ops; 'cpu' hides GPUs). Returns the model."""
    resolve_device(device)
    return model


def _input_size(model: keras.Model) -> int:
    transposed = any(layer.name == "to_channels_last" for layer in model.layers)  # channels_first input
    return int(model.input_shape[2 if transposed else 1])


def cast_for_inference(model: keras.Model, precision: str) -> keras.Model:
    """Hold the weights in the inference precision, once: fp32 returns the model; bf16 rebuilds it
    under Keras' "bfloat16" dtype policy (variables and computation in bfloat16, not the mixed
    policy, which re-casts float32 variables on every call) and copies the weights across."""
    if precision != "bf16":
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    try:
        cast = network.logits_model(model_variant(model), int(model.output_shape[-1]), input_size=_input_size(model))
    finally:
        keras.config.set_dtype_policy(previous)
    cast.set_weights(model.get_weights())
    return cast


def auto_inference_precision(device: str = "auto") -> str:
    """What `--precision auto` means for inference: bf16 where it is native (CPUs with AVX512-BF16
    or AMX, GPUs of compute capability 8.0+), otherwise fp32."""
    return inference_auto(*device_kind(resolve_device(device)))
