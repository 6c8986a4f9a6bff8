"""AlexNet as a Keras 3 functional model, built from an ArchSpec with stable layer names: the
architecture alone, no weights loaded (that is frameworks.keras.model.build_model, the one route).

Channels-last inside (a channels_first model transposes at its input), Keras' own layers and
keras.ops only, so it runs on the TensorFlow, PyTorch and JAX backends and a saved `.keras`
file loads without alexnet_lab. This module reaches nothing in weights/, so the weight-file
reader (io) can build from it.
"""

from __future__ import annotations

import keras
from keras import layers

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.spec import BN_EPSILON, ArchSpec, get_arch
from alexnet_lab.frameworks.keras import blocks, inputs


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


def graph(spec: ArchSpec, include_top: bool, input_tensor, input_shape, pooling: str | None, classes: int,
          classifier_activation: str | None, name: str, dropout: float, pretrained: bool) -> keras.Model:
    """The functional model for keras.applications' arguments (see model.AlexNet), fresh weights."""
    shape, fmt = inputs.resolve_input_shape(spec, input_shape, input_tensor, pretrained=pretrained)
    _check_args(spec, include_top, pooling, classes, shape, fmt)
    img_input, source_inputs = _input(shape, input_tensor)
    x = _features(inputs.to_channels_last(img_input, fmt), spec)
    x = _classifier(x, spec, classes, dropout, classifier_activation) if include_top else _pool(x, pooling, fmt)
    model = keras.Model(source_inputs if source_inputs is not None else img_input, x, name=name)
    model.alexnet_variant = spec.name
    if None in shape:
        inputs.guard_min_size(model, spec, fmt)
    return model


def logits_model(variant: str | ArchSpec, num_classes: int, dropout: float = 0.5, input_size: int | None = None,
                 in_chans: int = 3, pretrained: bool = False) -> keras.Model:
    """Logits out and NHWC input whatever Keras' global image_data_format says, since
    predict_logits, training, int8 and export all feed NHWC batches (the public AlexNet() follows
    the global format). Fresh weights."""
    spec = get_arch(variant)
    size = input_size or spec.input_size
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_last")
    try:
        return graph(spec, True, None, (size, size, in_chans), None, num_classes, None, "alexnet", dropout, pretrained)
    finally:
        keras.config.set_image_data_format(previous)
