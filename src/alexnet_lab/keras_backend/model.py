"""AlexNet as a Keras 3 functional model, built from an ArchSpec with stable layer names.

Channels-last, keras.layers / keras.ops only, so it runs on the TensorFlow, PyTorch and JAX
backends. The signature follows keras.applications (include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.spec import BN_EPSILON, ArchSpec, get_arch
from alexnet_lab.keras_backend.layers import AdaptiveAveragePooling2D, LocalResponseNormalization


def _input(spec: ArchSpec, input_tensor, input_shape):
    shape = tuple(input_shape) if input_shape is not None else (spec.input_size, spec.input_size, spec.in_channels)
    if len(shape) != 3 or shape[2] != spec.in_channels:
        raise UserInputError(
            f"input_shape must be (height, width, {spec.in_channels}) (channels last); received input_shape={input_shape}."
        )
    if input_tensor is None:
        return layers.Input(shape=shape, name="input"), None
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=shape, name="input"), None
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def _features(x, spec: ArchSpec):
    for i, conv in enumerate(spec.convs, start=1):
        # stride 1 with padding (kernel - 1) / 2 is 'same' exactly; it spares training a padded copy
        # of the layer's input (about 65 MB at owt, 224x224, batch 64). Other cases ('same' would
        # pad asymmetrically for stride 4) pad explicitly and symmetrically, as PyTorch does.
        same = conv.stride == 1 and 2 * conv.padding == conv.kernel - 1
        if conv.padding and not same:
            x = layers.ZeroPadding2D(conv.padding, name=f"pad{i}")(x)
        x = layers.Conv2D(conv.out_channels, conv.kernel, strides=conv.stride, groups=conv.groups,
                          padding="same" if same else "valid", activation=None if conv.batchnorm else "relu",
                          name=conv.name)(x)
        if conv.batchnorm:  # PyTorch's epsilon, and Keras' momentum 0.9 = PyTorch's momentum 0.1
            x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"bn{i}")(x)
            x = layers.Activation("relu", name=f"relu{i}")(x)
        if conv.lrn:
            lrn = spec.lrn
            x = LocalResponseNormalization(lrn.size, lrn.alpha, lrn.beta, lrn.k, name=f"lrn{i}")(x)
        if conv.pool:
            x = layers.MaxPooling2D(spec.pool_kernel, spec.pool_stride, name=f"pool{i}")(x)
    return x


def _classifier(x, spec: ArchSpec, classes: int, dropout: float, classifier_activation):
    if spec.adaptive_pool:
        x = AdaptiveAveragePooling2D(spec.pooled_size, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)  # H,W,C order: fc6's kernel rows are permuted to match
    for name in ("fc6", "fc7"):
        if spec.dropout_first:
            x = layers.Dropout(dropout, name=f"drop{name[2]}")(x)
        x = layers.Dense(spec.hidden, activation="relu", name=name)(x)
        if not spec.dropout_first:
            x = layers.Dropout(dropout, name=f"drop{name[2]}")(x)
    x = layers.Dense(classes, name="fc8")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, name="predictions")(x)
    return x


def AlexNet(  # noqa: N802 - the keras.applications naming people know
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "alexnet",
    variant: str = "owt",
    dropout: float = 0.5,
) -> keras.Model:
    """Build AlexNet in Keras 3, optionally loading weights.

    Args:
        include_top: include fc6-fc8; without it the output is pool5 (or pooled, see `pooling`).
        weights: None (random), a registry name ('imagenet', 'torchvision', 'bvlc') or a weight
            file path in any format the project reads.
        input_tensor: optional Keras tensor to use as the model input.
        input_shape: (height, width, 3); defaults to the variant's input size.
        pooling: with include_top=False: None, 'avg' or 'max' global pooling.
        classes: width of fc8.
        classifier_activation: activation of the output; None returns logits.
        name: model name.
        variant: 'owt' (torchvision layout) or 'original' (2012 / Caffe).
        dropout: dropout rate around fc6 and fc7.
    """
    spec = get_arch(variant)
    if pooling not in (None, "avg", "max"):
        raise unknown_name_error("pooling", str(pooling), ("avg", "max"))
    if classes < 1:
        raise UserInputError(f"classes must be at least 1; received classes={classes}.")
    img_input, source_inputs = _input(spec, input_tensor, input_shape)
    height = img_input.shape[1]
    if include_top and height is not None:
        spec.check_input_size(int(height))
    x = _features(img_input, spec)
    if include_top:
        x = _classifier(x, spec, classes, dropout, classifier_activation)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    model = keras.Model(source_inputs if source_inputs is not None else img_input, x, name=name)
    model.alexnet_variant = spec.name
    if weights is not None:
        from alexnet_lab.keras_backend.convert import load_into

        load_into(model, weights)
    return model


def build_model(variant: str | ArchSpec = "owt", num_classes: int = 1000, dropout: float = 0.5,
                input_size: int | None = None) -> keras.Model:
    """The same builder as the torch adapter's: random weights, logits out."""
    spec = get_arch(variant)
    size = input_size or spec.input_size
    return AlexNet(classes=num_classes, classifier_activation=None, variant=spec.name, dropout=dropout,
                   input_shape=(size, size, spec.in_channels))


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
    from alexnet_lab.keras_backend.device import resolve_device

    resolve_device(device)
    return model


def cast_for_inference(model: keras.Model, precision: str) -> keras.Model:
    """Hold the weights in the inference precision, once: fp32 returns the model; bf16 rebuilds it
    under Keras' "bfloat16" dtype policy (variables and computation in bfloat16, not the mixed
    policy, which re-casts float32 variables on every call) and copies the weights across."""
    if precision != "bf16":
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    try:
        cast = build_model(model.alexnet_variant, int(model.output_shape[-1]), input_size=int(model.input_shape[1]))
    finally:
        keras.config.set_dtype_policy(previous)
    cast.set_weights(model.get_weights())
    return cast


def auto_inference_precision(device: str = "auto") -> str:
    """What `--precision auto` means for inference: bf16 where it is native (CPUs with AVX512-BF16
    or AMX, GPUs of compute capability 8.0+), otherwise fp32."""
    from alexnet_lab.keras_backend.device import resolve_device
    from alexnet_lab.keras_backend.precision import resolve_precision

    return "bf16" if resolve_precision("auto", resolve_device(device)).name == "bf16" else "fp32"
