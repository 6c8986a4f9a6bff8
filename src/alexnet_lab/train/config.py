"""RunConfig: every setting of a training run, one field per `alexnet train` flag.

Resolution order: explicit flags > recipe > the defaults below. The resolved config is written to
RUN/config.json so a run can be repeated, resumed and compared.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from alexnet_lab.core.errors import UserInputError, unknown_name_error
from alexnet_lab.core.precision import TRAIN_PRECISIONS
from alexnet_lab.core.spec import VARIANTS as ARCHS
from alexnet_lab.data.ragged import CACHE_FORMATS, DEFAULT_QUALITY
from alexnet_lab.frameworks import DEFAULT_FRAMEWORK
from alexnet_lab.frameworks import ENTRIES as FRAMEWORK_ENTRIES
from alexnet_lab.frameworks import FRAMEWORKS as _BACKENDS

STRATEGIES = ("scratch", "head", "finetune", "two-phase")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "step", "constant")
PRECISIONS = TRAIN_PRECISIONS  # training compute precisions; inference has its own (core.precision)
AUGMENTS = ("none", "cifar", "cifar-cutout", "imagenet", "flip")
SWITCHES = ("auto", "on", "off")
DISTRIBUTE = ("none", "mirrored", "multi-worker")
FRAMEWORKS = tuple(_BACKENDS)  # the framework registry's names (frameworks.FRAMEWORKS)
VARIANTS = tuple(ARCHS)  # owt, original, cifar, cifar-wide
DATA_MODES = ("auto", "memory", "stream")
DECODERS = ("draft", "pil")
CONV1_INITS = ("random", "whiten")  # see train.whitening
# what a config.json written before a field existed meant by it: resume keeps the old behaviour
LEGACY = {"data_mode": "memory", "decoder": "pil"}

# what a framework's training offers beyond the common flags (torchrun, compile, distribute): the
# framework registry's train_features. Read here rather than in train.trainer_registry, whose dispatch
# imports the trainers, which import this module.
FEATURES = {name: entry.train_features for name, entry in FRAMEWORK_ENTRIES.items()}

# field -> its choices (--help lists them; a value outside gets the valid ones and a close match)
CHOICES = {"framework": FRAMEWORKS, "variant": VARIANTS, "strategy": STRATEGIES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
           "precision": PRECISIONS, "augment": AUGMENTS, "distribute": DISTRIBUTE, "channels_last": SWITCHES,
           "compile": SWITCHES, "data_mode": DATA_MODES, "decoder": DECODERS,
           "conv1_init": CONV1_INITS, "cache_format": CACHE_FORMATS}

# field -> (low, high or None, low allowed): every numeric flag, checked finite and in range up front
RANGES = {"epochs": (1, None, True), "head_epochs": (0, None, True), "batch_size": (1, None, True),
          "lr": (0, None, False), "momentum": (0, 1, True), "weight_decay": (0, None, True),
          "warmup_epochs": (0, None, True), "step_epochs": (1, None, True), "finetune_lr_factor": (0, None, False),
          "base_lr_factor": (0, None, False), "label_smoothing": (0, 1, True), "ema_decay": (0, 1, True),
          "grad_clip": (0, None, True), "cache_quality": (1, 101, True),
          "dropout": (0, 1, True), "early_stopping": (0, None, True), "val_ratio": (0, 1, True),
          "test_ratio": (0, 1, True), "input_size": (0, None, True), "synthetic_per_class": (1, None, True),
          "limit_per_class": (0, None, True), "seed": (0, None, True), "num_workers": (0, None, True),
          "limit_steps": (0, None, True)}


def supports(framework: str, feature: str) -> bool:
    """Whether `framework`'s training offers `feature` (a FEATURES entry)."""
    return feature in FEATURES.get(framework, frozenset())


@dataclass(frozen=True)
class RunConfig:
    """A training run. Fractions are 0..1; learning rates are per-step peak values."""

    data: str = "synthetic"  # class folder, list file, 'synthetic' or 'cifar10'
    data_dir: str | None = None  # local copy for --data cifar10 (python batches or class folders)
    val_data: str | None = None  # separate validation folder / list file (else split from --data)
    framework: str = DEFAULT_FRAMEWORK
    variant: str = "owt"
    weights: str = "none"  # 'none', a registry name ('imagenet', 'bvlc') or a weight file
    strategy: str = "scratch"
    train_layers: tuple[str, ...] = ("fc7", "fc8")  # for --strategy finetune
    skip_layers: tuple[str, ...] = ()  # re-initialised before training
    unfreeze: str = "all"  # two-phase, phase 2: 'all' or how many of the last weight layers
    epochs: int = 10  # total, both phases of two-phase included
    head_epochs: int = 2  # two-phase: epochs of phase 1 (head only)
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.001  # the classic AlexNet fine-tuning rate; recipes raise it for scratch runs
    momentum: float = 0.9
    weight_decay: float = 5e-4  # applied to weights only, not to biases or BatchNorm
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_epochs: int = 10  # 'step' schedule: lr x 0.1 every this many epochs
    finetune_lr_factor: float = 0.1  # two-phase phase 2 runs at lr x this (10x lower)
    base_lr_factor: float = 0.1  # phase 2: pretrained layers at a further x this (100x lower)
    label_smoothing: float = 0.0
    # exponential moving average of the weights and BatchNorm statistics, updated every optimizer step
    # (decay warmed up, see train.ema); when on, validation, the best model and the saved models use it. 0: off
    ema_decay: float = 0.0
    # conv1 at the start of a scratch run: 'random' (the framework's initialiser) or 'whiten' (filters that
    # whiten the training images' patches, see train.whitening)
    conv1_init: str = "random"
    eval_flip: bool = False  # validation and the run's eval average each image with its mirror (evaluate --crops 2)
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    dropout: float = 0.5
    early_stopping: int = 0  # stop after this many epochs without val top-1 gain; 0 disables
    val_ratio: float = 0.1
    test_ratio: float = 0.0
    augment: str = "flip"
    input_size: int = 0  # 0: the variant's (or the pretrained weights') input size
    synthetic_per_class: int = 300
    limit_per_class: int = 0  # use at most this many images per class (quick trials); 0 = all
    limit_steps: int = 0  # end every epoch after this many steps (smoke tests, benchmarks); 0 = whole epochs
    data_mode: str = "auto"  # auto: stream folders, list files and shards; decode synthetic / cifar10 into memory
    cache_dir: str | None = None  # stream from a memory-mapped decoded store built here once (reused by later runs)
    cache_format: str = "raw"  # the cache's images: raw uint8 pixels, or JPEGs re-encoded at the store size (smaller, lossy)
    cache_quality: int = DEFAULT_QUALITY  # JPEG quality of --cache-format jpeg
    decoder: str = "draft"  # JPEG: 'draft' decodes at a reduced DCT size still >= the resize; 'pil' at full size
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    precision: str = "auto"  # auto: bf16 on CPUs with native bf16 and on GPUs that have it, else fp32
    channels_last: str = "auto"  # auto: on for CUDA and the CPU (faster with oneDNN), off for MPS
    compile: str = "auto"  # PyTorch: torch.compile the training forward; auto: on for CUDA only (slower on the CPU)
    device: str = "auto"
    distribute: str = "none"  # Keras on TensorFlow: tf.distribute strategy (PyTorch runs use torchrun instead)
    strict: bool = False  # fail on the first unreadable image instead of skipping it
    recipe: str | None = None
    out: str = "runs/latest"
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._check_choices()
        self._check_numbers()
        self._check_combinations()

    def _check_choices(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise unknown_name_error(name.replace("_", "-"), getattr(self, name), choices)
        if self.unfreeze != "all" and not self.unfreeze.isdigit():
            raise UserInputError(f"--unfreeze takes 'all' or a number of layers; received '{self.unfreeze}'.")

    def _check_numbers(self) -> None:
        """Every number finite and in range, before anything is read, built or written."""
        for name, (low, high, inclusive_low) in RANGES.items():
            value = getattr(self, name)
            flag = f"--{name.replace('_', '-')}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"{flag} takes a number; received {value!r}.")
            if not math.isfinite(value):
                raise UserInputError(f"{flag} must be a finite number; received {value}.")
            too_low = value < low if inclusive_low else value <= low
            if too_low or (high is not None and value >= high):
                lower = f"{'>=' if inclusive_low else '>'} {low:g}"
                raise UserInputError(f"{flag} must be {lower}{'' if high is None else f' and < {high:g}'}; "
                                     f"received {value}.")

    def _check_combinations(self) -> None:
        if self.val_ratio + self.test_ratio >= 1.0:
            raise UserInputError(f"--val-ratio and --test-ratio must be in [0, 1) and sum below 1; received "
                                 f"{self.val_ratio} and {self.test_ratio}.")
        if self.strategy != "scratch" and self.weights == "none":
            raise UserInputError(f"--strategy {self.strategy} starts from pretrained weights; pass --weights imagenet, "
                                 "bvlc or a weight file (or use --strategy scratch).")
        if self.strategy == "two-phase" and self.head_epochs >= self.epochs:
            raise UserInputError(f"two-phase needs --epochs > --head-epochs; received {self.epochs} and {self.head_epochs}.")
        if self.distribute != "none" and not supports(self.framework, "distribute"):
            raise UserInputError(f"--distribute {self.distribute} is for --framework keras (tf.distribute); received "
                                 f"--framework {self.framework}. For PyTorch, start the run with torchrun instead and "
                                 "leave --distribute at none (see docs/distributed.md).")
        if self.ema_decay and self.distribute != "none":
            raise UserInputError("--ema-decay does not run under --distribute yet (tf.distribute); train in one process, "
                                 "or set --ema-decay 0.")
        if self.conv1_init != "random" and self.strategy != "scratch":
            raise UserInputError(f"--conv1-init {self.conv1_init} sets conv1 at the start of a scratch run; --strategy "
                                 f"{self.strategy} keeps the pretrained conv1. Leave --conv1-init at random.")
        if self.compile == "on" and not supports(self.framework, "compile"):
            raise UserInputError("--compile is torch.compile, for --framework torch; Keras compiles its steps itself "
                                 "(tf.function). Leave --compile at auto.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["train_layers"], data["skip_layers"] = list(self.train_layers), list(self.skip_layers)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        values = {**LEGACY, **{k: v for k, v in data.items() if k in known}}
        for key in ("train_layers", "skip_layers"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def with_changes(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)
