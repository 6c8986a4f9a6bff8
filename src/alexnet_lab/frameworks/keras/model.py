"""AlexNet as a Keras 3 functional model, built from an ArchSpec with stable layer names.

Channels-last inside (a channels_first model transposes at its input), Keras' own layers and
keras.ops only, so it runs on the TensorFlow, PyTorch and JAX backends and a saved `.keras`
file loads without alexnet_lab. The signature follows keras.applications (include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.precision import inference_auto
from alexnet_lab.core.spec import BN_EPSILON, ArchSpec, get_arch
from alexnet_lab.frameworks.keras import blocks, inputs
from alexnet_lab.frameworks.keras.convert import load_into, model_variant
from alexnet_lab.frameworks.keras.device import device_kind, resolve_device


def _input(shape: tuple, input_tensor):
    if input_tensor is None:
        return layers.Input(shape=shape, name="input"), None
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=shape, name="input"), None
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def _features(x, spec: ArchSpec):
    """conv1 ... pool5 on a channels-last map (every layer says so: the global data format may
    be channels_first, see frameworks.keras.inputs)."""
    cl = "channels_last"
    for i, conv in enumerate(spec.convs, start=1):
        # stride 1 with padding (kernel - 1) / 2 is 'same' exactly; it spares training a padded copy
        # of the layer's input (about 65 MB at owt, 224x224, batch 64). Other cases ('same' would
        # pad asymmetrically for stride 4) pad explicitly and symmetrically, as PyTorch does.
        same = conv.stride == 1 and 2 * conv.padding == conv.kernel - 1
        if conv.padding and not same:
            x = layers.ZeroPadding2D(conv.padding, data_format=cl, name=f"pad{i}")(x)
        x = layers.Conv2D(conv.out_channels, conv.kernel, strides=conv.stride, groups=conv.groups,
                          padding="same" if same else "valid", activation=None if conv.batchnorm else "relu",
                          data_format=cl, name=conv.name)(x)
        if conv.batchnorm:  # PyTorch's epsilon, and Keras' momentum 0.9 = PyTorch's momentum 0.1
            x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=0.9, name=f"bn{i}")(x)
            x = layers.Activation("relu", name=f"relu{i}")(x)
        if conv.lrn:
            x = blocks.lrn(x, spec.lrn, name=f"lrn{i}")
        if conv.pool:
            x = layers.MaxPooling2D(spec.pool_kernel, spec.pool_stride, data_format=cl, name=f"pool{i}")(x)
    return x


def _classifier(x, spec: ArchSpec, classes: int, dropout: float, classifier_activation):
    if spec.adaptive_pool:
        x = blocks.adaptive_avgpool(x, spec.pooled_size, name="avgpool")
    x = layers.Flatten(data_format="channels_last", name="flatten")(x)  # H,W,C: fc6's rows are permuted to match
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


def _pool(x, pooling: str | None, fmt: str):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(data_format="channels_last", name="global_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(data_format="channels_last", name="global_pool")(x)
    return inputs.to_model_format(x, fmt)


def _check_args(spec: ArchSpec, include_top: bool, pooling, classes: int, shape: tuple, fmt: str) -> None:
    if pooling not in (None, "avg", "max"):
        raise unknown_name_error("pooling", str(pooling), ("avg", "max"))
    if classes < 1:
        raise UserInputError(f"classes must be at least 1; received classes={classes}.")
    height, width = (shape[0], shape[1]) if fmt == "channels_last" else (shape[1], shape[2])
    if include_top and (height is None or width is None):
        raise UserInputError(
            f"include_top=True needs a fixed input size (fc6 reads a fixed map); received input_shape={shape}. "
            "Pass a size, or include_top=False for variable-size input."
        )
    if include_top:
        spec.check_input_size(int(height))
        spec.check_input_size(int(width))


def AlexNet(  # noqa: N802 - the keras.applications naming people know
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple[int | None, int | None, int] | None = None,
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
        input_shape: (height, width, channels), or (channels, height, width) under
            keras.config.image_data_format() 'channels_first'; defaults to the variant's input
            size. Any channel count without weights; None sizes without the top.
        pooling: with include_top=False: None, 'avg' or 'max' global pooling.
        classes: width of fc8.
        classifier_activation: activation of the output; None returns logits.
        name: model name.
        variant: 'owt' (torchvision layout), 'original' (2012 / Caffe) or 'cifar'.
        dropout: dropout rate around fc6 and fc7.
    """
    spec = get_arch(variant)
    shape, fmt = inputs.resolve_input_shape(spec, input_shape, input_tensor, pretrained=weights is not None)
    _check_args(spec, include_top, pooling, classes, shape, fmt)
    img_input, source_inputs = _input(shape, input_tensor)
    x = _features(inputs.to_channels_last(img_input, fmt), spec)
    x = _classifier(x, spec, classes, dropout, classifier_activation) if include_top else _pool(x, pooling, fmt)
    model = keras.Model(source_inputs if source_inputs is not None else img_input, x, name=name)
    model.alexnet_variant = spec.name
    if None in shape:
        inputs.guard_min_size(model, spec, fmt)
    if weights is not None:
        load_into(model, weights)
    return model


def build_model(variant: str | ArchSpec = "owt", num_classes: int = 1000, dropout: float = 0.5,
                input_size: int | None = None, *, weights: str | None = None, in_chans: int = 3) -> keras.Model:
    """The same builder as the torch adapter's: logits out, random or loaded weights, and NHWC
    input whatever Keras' global image_data_format says, since predict_logits, training, int8 and
    export all feed NHWC batches (the public AlexNet() follows the global format)."""
    spec = get_arch(variant)
    size = input_size or spec.input_size
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_last")
    try:
        return AlexNet(classes=num_classes, classifier_activation=None, variant=spec.name, dropout=dropout,
                       input_shape=(size, size, in_chans), weights=weights)
    finally:
        keras.config.set_image_data_format(previous)


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
        cast = build_model(model_variant(model), int(model.output_shape[-1]), input_size=_input_size(model))
    finally:
        keras.config.set_dtype_policy(previous)
    cast.set_weights(model.get_weights())
    return cast


def auto_inference_precision(device: str = "auto") -> str:
    """What `--precision auto` means for inference: bf16 where it is native (CPUs with AVX512-BF16
    or AMX, GPUs of compute capability 8.0+), otherwise fp32."""
    return inference_auto(*device_kind(resolve_device(device)))
