"""Builders with the signatures people know: torchvision's `alexnet(weights=..., progress=...)`
and timm's `create_model(name, pretrained=..., num_classes=...)`.

Each is a thin call into the one route, :func:`alexnet_lab.frameworks.torch.model.build_model`,
so preprocessing, class names and hash checks stay bound to the file. The two builders keep
their library's rule for a class count that differs from the weights': torchvision's refuses
it, timm's loads everything but fc8.
"""

import logging
import os
from collections.abc import Sequence

from torch import nn

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.spec import DEFAULT_VARIANT
from alexnet_lab.frameworks.torch.model import AlexNet, build_model, load_into
from alexnet_lab.weights.catalog import default_weights, list_models, variant_of
from alexnet_lab.weights.hub import is_hub_ref, parse_hub_ref
from alexnet_lab.weights.pretrained import bundle_for as _bundle

log = logging.getLogger(__name__)

WeightsArg = str | os.PathLike | WeightBundle | None


def _torchvision_builder(variant: str, weights: WeightsArg, progress: bool, num_classes: int | None,
                         **kwargs) -> AlexNet:
    if weights is None:
        return build_model(variant, num_classes, **kwargs)
    bundle = _bundle(weights, variant)
    if num_classes is not None and num_classes != bundle.num_classes:
        # torchvision's rule: the weights fix the class count; swap the head afterwards
        raise UserInputError(
            f"num_classes={num_classes} does not match the weights' {bundle.num_classes} classes; leave "
            "num_classes out and replace the head (model.reset_classifier(n) or model.classifier[-1]), "
            "or use create_model(..., pretrained=True, num_classes=n)."
        )
    del progress  # downloads log their progress (alexnet_lab.weights.download)
    return build_model(variant, bundle.num_classes, weights=bundle, **kwargs)


def alexnet(*, weights: WeightsArg = None, progress: bool = True, num_classes: int | None = None,
            **kwargs) -> AlexNet:
    """torchvision.models.alexnet: the owt network, same module tree and state-dict keys.

    Args:
        weights: None, 'IMAGENET1K_V1' / 'DEFAULT' / 'imagenet' / 'torchvision', a weight file,
            'hf://OWNER/REPO[@REVISION]' or a WeightBundle.
        progress: accepted for torchvision's signature.
        num_classes: fc8 width; with weights it must equal theirs (torchvision's rule).
        **kwargs: dropout, in_chans.
    """
    return _torchvision_builder("owt", weights, progress, num_classes, **kwargs)


def alexnet_original(*, weights: WeightsArg = None, progress: bool = True, num_classes: int | None = None,
                     **kwargs) -> AlexNet:
    """The 2012 / Caffe network in torchvision's builder shape ('DEFAULT' = the bvlc weights)."""
    return _torchvision_builder("original", weights, progress, num_classes, **kwargs)


def alexnet_cifar(*, weights: WeightsArg = None, progress: bool = True, num_classes: int | None = None,
                  **kwargs) -> AlexNet:
    """The 32x32 CIFAR adaptation in torchvision's builder shape (no public weights)."""
    return _torchvision_builder("cifar", weights, progress, num_classes, **kwargs)


def _pretrained_source(model_name: str, variant: str, pretrained: bool | str, checkpoint_path: str) -> WeightsArg:
    if checkpoint_path:
        return checkpoint_path
    if not pretrained:
        return None
    if isinstance(pretrained, str):  # a registry name or file, beyond timm's bool
        return pretrained
    source = default_weights(variant)
    if source is None:
        raise UserInputError(f"'{model_name}' has no pretrained weights; pass pretrained=False, or "
                             "checkpoint_path='FILE' with weights of your own.")
    return source


def create_model(model_name: str, pretrained: bool | str = False, num_classes: int | None = None,
                 in_chans: int = 3, features_only: bool = False, out_indices: Sequence[int | str] | None = None,
                 checkpoint_path: str = "", drop_rate: float = 0.5, **kwargs) -> nn.Module:
    """timm.create_model for the AlexNet names (see list_models()).

    Args:
        model_name: 'alexnet_owt' (= 'alexnet'), 'alexnet_original' or 'alexnet_cifar', with an
            optional tag ('alexnet_owt.tv_in1k'); or timm's 'hf-hub:OWNER/REPO[@REVISION]' (also
            'hf://...'): the variant and classes come from that repository's model.safetensors,
            loaded when pretrained=True.
        pretrained: True: the variant's public weights; a registry name or file also works.
        num_classes: fc8 width (default: the weights', else the variant's own); 0 builds it
            without fc8. A width other than the weights' loads every layer but fc8.
        in_chans: input channels (3 with pretrained weights).
        features_only: return a model whose forward gives the feature maps at out_indices.
        out_indices: feature points (0-4) or stable layer names; default all five.
        checkpoint_path: a weight file to load (any format the project reads).
        drop_rate: dropout around fc6 and fc7.
        **kwargs: must be empty (an unknown keyword is refused, not ignored).
    """
    if kwargs:
        raise UserInputError(f"create_model got unexpected arguments {sorted(kwargs)}; expected pretrained, num_classes, "
                             "in_chans, features_only, out_indices, checkpoint_path, drop_rate.")
    if is_hub_ref(model_name):  # timm's spelling: the repository's weights say what the model is
        hub_bundle = _bundle(model_name, DEFAULT_VARIANT)  # the variant only resolves DEFAULT
        variant = hub_bundle.meta.variant
        source = checkpoint_path or (hub_bundle if pretrained else None)
        num_classes = hub_bundle.num_classes if num_classes is None else num_classes
    else:
        variant = variant_of(model_name)
        source = _pretrained_source(model_name, variant, pretrained, checkpoint_path)
    model = build_model(variant, num_classes, drop_rate, weights=source, in_chans=in_chans)
    if is_hub_ref(model_name):  # timm records the repository as hf_hub_id
        model.pretrained_cfg = {**model.pretrained_cfg, "hf_hub_id": parse_hub_ref(model_name).repo_id}
    if features_only:
        from alexnet_lab.frameworks.torch.features import AlexNetFeatures

        return AlexNetFeatures(model, out_indices)
    return model


__all__ = ["alexnet", "alexnet_cifar", "alexnet_original", "create_model", "list_models", "load_into"]
