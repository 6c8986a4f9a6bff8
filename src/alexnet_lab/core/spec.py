"""Architecture specs for the AlexNet variants: layers, output shapes and parameter counts.

One frozen :class:`ArchSpec` per variant is the single definition both framework adapters build
from, so the PyTorch and Keras models cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from alexnet_lab.core.errors import UserInputError, unknown_name_error

BN_PARTS = ("weight", "bias", "running_mean", "running_var")  # PyTorch's BatchNorm2d names
BN_EPSILON = 1e-5  # PyTorch's default; the Keras layer is built with the same value


@dataclass(frozen=True)
class LRNSpec:
    """Local response normalisation in the Caffe / torch.nn.LocalResponseNorm convention.

    b_c = a_c / (k + alpha / size * sum of a^2 over `size` neighbouring channels) ** beta.
    TensorFlow's depth_radius is (size - 1) / 2 and its alpha is alpha / size.
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@dataclass(frozen=True)
class ConvSpec:
    """One convolution block: conv -> ReLU [-> LRN] [-> max-pool]."""

    name: str
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    lrn: bool = False  # LRN after the ReLU and before the pool, as in the 2012 network
    batchnorm: bool = False  # BatchNorm between conv and ReLU (the 32x32 'cifar' adaptation only)
    pool: bool = False  # max-pool (ArchSpec.pool_kernel, ArchSpec.pool_stride) after the block


@dataclass(frozen=True)
class ArchSpec:
    """A complete AlexNet variant.

    The classifier is fc6 -> ReLU -> fc7 -> ReLU -> fc8 with dropout; fc6 reads the pool5 output
    flattened in C,H,W order (the canonical layout) of size pooled_size x pooled_size.
    """

    name: str
    description: str
    convs: tuple[ConvSpec, ...]
    input_size: int  # the square input the pretrained weights expect
    hidden: int = 4096  # width of fc6 and fc7
    pooled_size: int = 6  # spatial size fc6 reads
    adaptive_pool: bool = False  # average-pool pool5 to pooled_size x pooled_size (torchvision)
    dropout_first: bool = False  # torchvision puts dropout before fc6/fc7, Caffe after their ReLU
    pool_kernel: int = 3
    pool_stride: int = 2
    in_channels: int = 3
    lrn: LRNSpec = LRNSpec()
    num_classes: int = 1000  # fc8 width when neither the weights nor the caller give one (10: CIFAR-10 variants)

    @property
    def conv_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.convs)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the layers that hold weights, input to output."""
        return self.conv_names + ("fc6", "fc7", "fc8")

    @property
    def bn_names(self) -> tuple[str, ...]:
        """BatchNorm layer names (bn<i> for conv<i>); empty for the ImageNet variants."""
        return tuple(f"bn{i}" for i, c in enumerate(self.convs, start=1) if c.batchnorm)

    @property
    def flat_features(self) -> int:
        """Length of the vector fc6 reads: channels of conv5 x pooled_size^2."""
        return self.convs[-1].out_channels * self.pooled_size**2

    def canonical_shapes(self, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
        """Shape of every canonical tensor (PyTorch conventions), in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        in_ch = self.in_channels
        for conv in self.convs:
            shapes[f"{conv.name}.weight"] = (conv.out_channels, in_ch // conv.groups, conv.kernel, conv.kernel)
            shapes[f"{conv.name}.bias"] = (conv.out_channels,)
            if conv.batchnorm:
                bn = f"bn{conv.name[len('conv'):]}"
                for part in BN_PARTS:
                    shapes[f"{bn}.{part}"] = (conv.out_channels,)
            in_ch = conv.out_channels
        for name, fan_in, fan_out in (
            ("fc6", self.flat_features, self.hidden),
            ("fc7", self.hidden, self.hidden),
            ("fc8", self.hidden, num_classes),
        ):
            shapes[f"{name}.weight"] = (fan_out, fan_in)
            shapes[f"{name}.bias"] = (fan_out,)
        return shapes

    def param_count(self, num_classes: int = 1000) -> int:
        return sum(math.prod(s) for s in self.canonical_shapes(num_classes).values())

    def feature_map_size(self, input_size: int) -> int:
        """Spatial size of the pool5 output for a square input (before any adaptive pool).

        Raises:
            UserInputError: when the input is too small for the network.
        """
        size = input_size
        for conv in self.convs:
            size = (size + 2 * conv.padding - conv.kernel) // conv.stride + 1
            if conv.pool:
                size = (size - self.pool_kernel) // self.pool_stride + 1
            if size < 1:
                raise UserInputError(
                    f"input size {input_size} is too small for variant '{self.name}' (the feature map "
                    f"vanishes at {conv.name}); expected at least {self.min_input_size} (the pretrained "
                    f"weights expect {self.input_size}). Resize the input."
                )
        return size

    @property
    def min_input_size(self) -> int:
        """The smallest square input whose pool5 output is at least 1x1."""
        size = 1
        while not self._survives(size):
            size += 1
        return size

    def _survives(self, size: int) -> bool:
        for conv in self.convs:
            size = (size + 2 * conv.padding - conv.kernel) // conv.stride + 1
            if conv.pool and size >= 1:
                size = (size - self.pool_kernel) // self.pool_stride + 1
            if size < 1:
                return False
        return True

    def macs(self, input_size: int, num_classes: int = 1000) -> int:
        """Multiply-accumulates of one forward pass of a square image (convolutions and the fully
        connected layers; ReLU, pooling, LRN and BatchNorm are a fraction of a percent)."""
        size, in_ch, total = input_size, self.in_channels, 0
        for conv in self.convs:
            size = (size + 2 * conv.padding - conv.kernel) // conv.stride + 1
            total += size * size * conv.out_channels * (in_ch // conv.groups) * conv.kernel**2
            if conv.pool:
                size = (size - self.pool_kernel) // self.pool_stride + 1
            in_ch = conv.out_channels
        return total + self.flat_features * self.hidden + self.hidden * self.hidden + self.hidden * num_classes

    def check_input_size(self, input_size: int) -> None:
        """Raise when fc6 cannot read the pool5 output of this input size."""
        size = self.feature_map_size(input_size)
        if not self.adaptive_pool and size != self.pooled_size:
            raise UserInputError(
                f"variant '{self.name}' needs a {self.input_size}x{self.input_size} input for its "
                f"classifier (pool5 must be {self.pooled_size}x{self.pooled_size}); received "
                f"{input_size}x{input_size}, which gives {size}x{size}. Resize the input, or build "
                f"without the top (include_top=False)."
            )


OWT = ArchSpec(
    name="owt",
    description="torchvision's 'one weird trick' AlexNet: 64-192-384-256-256, 224 input, "
    "adaptive average pool to 6x6",
    convs=(
        ConvSpec("conv1", 64, 11, stride=4, padding=2, pool=True),
        ConvSpec("conv2", 192, 5, padding=2, pool=True),
        ConvSpec("conv3", 384, 3, padding=1),
        ConvSpec("conv4", 256, 3, padding=1),
        ConvSpec("conv5", 256, 3, padding=1, pool=True),
    ),
    input_size=224,
    adaptive_pool=True,
    dropout_first=True,
)

ORIGINAL = ArchSpec(
    name="original",
    description="the 2012 / Caffe bvlc_alexnet: 96-256-384-384-256, groups=2 on conv2/4/5, "
    "LRN after conv1 and conv2, 227 input",
    convs=(
        ConvSpec("conv1", 96, 11, stride=4, padding=0, lrn=True, pool=True),
        ConvSpec("conv2", 256, 5, padding=2, groups=2, lrn=True, pool=True),
        ConvSpec("conv3", 384, 3, padding=1),
        ConvSpec("conv4", 384, 3, padding=1, groups=2),
        ConvSpec("conv5", 256, 3, padding=1, groups=2, pool=True),
    ),
    input_size=227,
)

CIFAR = ArchSpec(
    name="cifar",
    description="32x32-native adaptation for CIFAR-sized images: AlexNet's 5 conv + 3 fc layout "
    "at 64-128-256-192-192 width, 5x5 then 3x3 kernels with stride 1, 2x2 max-pools, BatchNorm "
    "instead of LRN, fc width 1024",
    convs=(
        ConvSpec("conv1", 64, 5, padding=2, batchnorm=True, pool=True),
        ConvSpec("conv2", 128, 3, padding=1, batchnorm=True, pool=True),
        ConvSpec("conv3", 256, 3, padding=1, batchnorm=True),
        ConvSpec("conv4", 192, 3, padding=1, batchnorm=True),
        ConvSpec("conv5", 192, 3, padding=1, batchnorm=True, pool=True),
    ),
    input_size=32,
    hidden=1024,
    pooled_size=4,
    pool_kernel=2,
    pool_stride=2,
    num_classes=10,
)

CIFAR_WIDE = replace(
    CIFAR,
    name="cifar-wide",
    description="the 'cifar' adaptation at AlexNet's own conv widths 96-256-384-384-256 (same kernels, "
    "strides, pools, BatchNorm and fc width 1024; about 2.8x the multiply-accumulates of 'cifar')",
    convs=tuple(replace(conv, out_channels=width) for conv, width in zip(CIFAR.convs, (96, 256, 384, 384, 256))),
)

VARIANTS: dict[str, ArchSpec] = {spec.name: spec for spec in (OWT, ORIGINAL, CIFAR, CIFAR_WIDE)}
DEFAULT_VARIANT = OWT.name  # what a builder builds when neither the caller nor the weights say


def get_arch(variant: str | ArchSpec) -> ArchSpec:
    """Return the spec of a variant by name (an ArchSpec passes through).

    Raises:
        UserInputError: for an unknown name, with the valid names and a close match.
    """
    if isinstance(variant, ArchSpec):
        return variant
    try:
        return VARIANTS[variant]
    except KeyError:
        raise unknown_name_error("variant", str(variant), VARIANTS) from None
