"""Training strategies as phases: which layers train, at which learning rates, for how long.

scratch:   one phase, every layer, lr.
head:      one phase, only the new head (fc8) trains; the pretrained base is frozen.
finetune:  one phase, only --train-layers train (default fc7 fc8); --skip-layers are re-initialised.
two-phase: phase 1 trains the head alone for --head-epochs at lr; phase 2 unfreezes the last
           --unfreeze layers (or all) at lr x finetune_lr_factor for re-initialised layers and
           lr x finetune_lr_factor x base_lr_factor for pretrained ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.spec import ArchSpec
from alexnet_lab.train.config import RunConfig


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    layer_lrs: tuple[tuple[str, float], ...]  # (layer, lr) for every trainable layer, input to output

    @property
    def trainable(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.layer_lrs)


def _check_layers(names: tuple[str, ...], spec: ArchSpec, flag: str) -> None:
    for name in names:
        if name not in spec.layer_names:
            raise unknown_name_error(f"layer in {flag}", name, spec.layer_names)


def _with_bn(layers: tuple[str, ...], spec: ArchSpec) -> tuple[str, ...]:
    """Add each trainable conv's BatchNorm layer right after it."""
    out: list[str] = []
    for name in layers:
        out.append(name)
        bn = f"bn{name[len('conv'):]}" if name.startswith("conv") else ""
        if bn in spec.bn_names:
            out.append(bn)
    return tuple(out)


def plan_phases(config: RunConfig, spec: ArchSpec, reinit: tuple[str, ...]) -> list[Phase]:
    """The phases of a run. `reinit` names the layers that start freshly initialised (the head
    when the class count changes, and --skip-layers)."""
    _check_layers(config.train_layers, spec, "--train-layers")
    _check_layers(config.skip_layers, spec, "--skip-layers")
    every = _with_bn(spec.layer_names, spec)
    if config.strategy == "scratch":
        return [Phase("train", config.epochs, tuple((n, config.lr) for n in every))]
    if config.strategy == "head":
        return [Phase("head", config.epochs, (("fc8", config.lr),))]
    if config.strategy == "finetune":
        layers = _with_bn(config.train_layers, spec)
        return [Phase("finetune", config.epochs, tuple((n, config.lr) for n in layers))]
    count = len(spec.layer_names) if config.unfreeze == "all" else int(config.unfreeze)
    if not 1 <= count <= len(spec.layer_names):
        raise UserInputError(f"--unfreeze must be 'all' or 1..{len(spec.layer_names)}; received {config.unfreeze}.")
    unfrozen = _with_bn(spec.layer_names[-count:], spec)
    low = config.lr * config.finetune_lr_factor
    lrs = tuple((n, low if n in reinit else low * config.base_lr_factor) for n in unfrozen)
    return [Phase("head", config.head_epochs, (("fc8", config.lr),)),
            Phase("finetune", config.epochs - config.head_epochs, lrs)]


def phase_at(phases: list[Phase], epoch: int) -> int:
    """Index of the phase a 0-based epoch of the whole run belongs to."""
    start = 0
    for i, phase in enumerate(phases):
        if epoch < start + phase.epochs:
            return i
        start += phase.epochs
    raise IndexError(f"epoch {epoch} is past the last phase")
