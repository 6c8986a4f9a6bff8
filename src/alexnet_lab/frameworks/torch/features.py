"""Feature maps out of the PyTorch AlexNet in timm's shapes: feature_info, forward_intermediates
and the features_only model.

The five feature points are the outputs of the conv blocks before their pool (relu<i>, or
lrn<i> where the block normalises), like timm's stages. Any stable layer name of the feature
part (`conv1`, `pool2`, ...) may be asked for as well; indices count over the five points.
"""

from collections.abc import Sequence

import torch
from torch import nn

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.spec import ArchSpec

OUTPUT_FORMATS = ("NCHW", "NHWC")


def feature_info(spec: ArchSpec) -> list[dict]:
    """One dict per feature point: module (stable name), num_chs and reduction (input stride)."""
    info, reduction = [], 1
    for i, conv in enumerate(spec.convs, start=1):
        reduction *= conv.stride
        info.append({"module": f"lrn{i}" if conv.lrn else f"relu{i}", "num_chs": conv.out_channels,
                     "reduction": reduction, "index": i - 1})
        if conv.pool:
            reduction *= spec.pool_stride
    return info


def resolve_indices(spec: ArchSpec, feature_names: Sequence[str],
                    indices: int | Sequence[int | str] | None) -> list[str]:
    """Stable names to collect: None -> all five points, n -> the last n, else indices (negative
    counting from the end) or names of feature layers, in network order.

    Raises:
        UserInputError: an index out of range or an unknown name (with a close match).
    """
    points = [entry["module"] for entry in feature_info(spec)]
    if indices is None:
        wanted = points
    elif isinstance(indices, int):
        if not 0 < indices <= len(points):
            raise UserInputError(f"indices as a count must be 1-{len(points)}; received {indices}.")
        wanted = points[-indices:]
    else:
        wanted = []
        for item in indices:
            if isinstance(item, str):
                if item not in feature_names:
                    raise unknown_name_error("feature layer", item, feature_names)
                wanted.append(item)
            elif -len(points) <= item < len(points):
                wanted.append(points[item])
            else:
                raise UserInputError(f"feature index {item} is out of range; expected -{len(points)} to {len(points) - 1}.")
    return [name for name in feature_names if name in wanted]


def forward_intermediates(model, x: torch.Tensor, indices=None, stop_early: bool = False,
                          output_fmt: str = "NCHW", intermediates_only: bool = False):
    """timm's forward_intermediates: (final feature map, [intermediate maps]) or the list alone.

    Args:
        model: an AlexNet (frameworks.torch.model).
        x: N x C x H x W input.
        indices: see :func:`resolve_indices`.
        stop_early: stop after the last wanted layer (only with intermediates_only).
        output_fmt: 'NCHW' or 'NHWC' for the intermediate maps.
        intermediates_only: return only the list.
    """
    if output_fmt not in OUTPUT_FORMATS:
        raise unknown_name_error("output_fmt", output_fmt, OUTPUT_FORMATS)
    names = [name for name in model.layer_names if model.state_dict_prefix(name).startswith("features.")]
    wanted = resolve_indices(model.spec, names, indices)
    intermediates = []
    for name in names:
        x = model.layer(name)(x)
        if name in wanted:  # a copy: the in-place ReLU that may follow would change it
            intermediates.append(x.clone() if output_fmt == "NCHW" else x.permute(0, 2, 3, 1).contiguous())
            if stop_early and intermediates_only and len(intermediates) == len(wanted):
                break
    return intermediates if intermediates_only else (x, intermediates)


class AlexNetFeatures(nn.Module):
    """timm's features_only model: forward returns the list of feature maps at out_indices."""

    def __init__(self, model: nn.Module, out_indices=None, output_fmt: str = "NCHW") -> None:
        super().__init__()
        self.model = model
        names = [n for n in model.layer_names if model.state_dict_prefix(n).startswith("features.")]
        self.out_names = resolve_indices(model.spec, names, out_indices)
        self.output_fmt = output_fmt
        points = {entry["module"]: entry for entry in feature_info(model.spec)}
        self.feature_info = [points.get(name, {"module": name}) for name in self.out_names]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return forward_intermediates(self.model, x, self.out_names, stop_early=True,
                                     output_fmt=self.output_fmt, intermediates_only=True)
