"""Named, documented training recipes. Explicit flags override a recipe's values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alexnet_lab.core.errors import unknown_name_error


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    settings: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.settings)


# cifar10-best's settings, which cifar10-wide widens
CIFAR10_BEST = (
    ("variant", "cifar"), ("strategy", "scratch"), ("weights", "none"), ("epochs", 40), ("batch_size", 128),
    ("optimizer", "sgd"), ("lr", 0.05), ("momentum", 0.9), ("weight_decay", 5e-4), ("schedule", "onecycle"),
    ("warmup_epochs", 2.0), ("label_smoothing", 0.1), ("augment", "cifar-cutout"), ("dropout", 0.3),
    ("val_ratio", 0.1), ("test_ratio", 0.1), ("eval_flip", True))
EMA_DECAY_40_EPOCHS = 0.999  # averages over ~1,000 steps: about 3 of 40 epochs of 313 steps (batch 128, 40,000 images)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "cifar10-scratch",
            "CIFAR-10 from scratch on the 32x32-native 'cifar' variant: SGD momentum 0.9, one-cycle "
            "lr 0.05, label smoothing 0.1, pad-4 random crop + flip, 10 epochs, 10% validation split.",
            (("variant", "cifar"), ("strategy", "scratch"), ("weights", "none"), ("epochs", 10),
             ("batch_size", 128), ("optimizer", "sgd"), ("lr", 0.05), ("momentum", 0.9), ("weight_decay", 5e-4),
             ("schedule", "onecycle"), ("warmup_epochs", 2.0), ("label_smoothing", 0.1), ("augment", "cifar"),
             ("dropout", 0.3), ("val_ratio", 0.1)),
        ),
        Recipe(
            "cifar10-fast",
            "CIFAR-10 from scratch in 5 epochs: cifar10-scratch's one-cycle schedule compressed to 5 epochs "
            "(1 of warm-up) with dropout 0.1, conv1 whitened from the training images (--conv1-init whiten) and "
            "flips as the only augmentation (five epochs underfit: the random crop cost more than it gave); "
            "validation and the run's eval average each image with its mirror (--eval-flip; evaluate with "
            "--crops 2 or 10); 10% validation and a 10% held-out test split. Levers and results: docs/recipes.md.",
            (("variant", "cifar"), ("strategy", "scratch"), ("weights", "none"), ("epochs", 5),
             ("batch_size", 128), ("optimizer", "sgd"), ("lr", 0.05), ("momentum", 0.9), ("weight_decay", 5e-4),
             ("schedule", "onecycle"), ("warmup_epochs", 1.0), ("label_smoothing", 0.1), ("augment", "flip"),
             ("conv1_init", "whiten"), ("dropout", 0.1), ("val_ratio", 0.1), ("test_ratio", 0.1),
             ("eval_flip", True)),
        ),
        Recipe(
            "cifar10-best",
            "CIFAR-10 from scratch for the best accuracy in 40 epochs: cifar10-scratch's one-cycle schedule "
            "stretched to 40 epochs, with 8x8 cutout on top of pad-4 random crop + flip; 10% validation and a "
            "10% held-out test split; validation and the run's eval flip-averaged (--eval-flip; evaluate with "
            "--crops 2 or 10). Results: docs/training.md.",
            CIFAR10_BEST,
        ),
        Recipe(
            "cifar10-wide",
            "cifar10-best on the 'cifar-wide' variant (AlexNet's own 96-256-384-384-256 conv widths, about 2.8x "
            "the compute) with a moving average of the weights (--ema-decay 0.999), validated, selected and "
            "saved, and cifar10-fast's whitened conv1 (--conv1-init whiten); flip-averaged validation and eval. "
            "Its aim and measurements: docs/recipes.md.",
            tuple(dict(CIFAR10_BEST, variant="cifar-wide", ema_decay=EMA_DECAY_40_EPOCHS, conv1_init="whiten").items()),
        ),
        Recipe(
            "cifar10-finetune",
            "Fine-tune ImageNet AlexNet (owt) on CIFAR-10 at 224x224: two phases, head first for 2 "
            "epochs at lr 0.01, then everything at 10x (new head) and 100x (pretrained layers) lower "
            "lr; flip augmentation; preprocessing from the weights. Needs a GPU to be quick.",
            (("variant", "owt"), ("strategy", "two-phase"), ("weights", "imagenet"), ("epochs", 8),
             ("head_epochs", 2), ("batch_size", 64), ("optimizer", "sgd"), ("lr", 0.01), ("momentum", 0.9),
             ("schedule", "cosine"), ("warmup_epochs", 0.5), ("augment", "flip"), ("val_ratio", 0.1),
             ("unfreeze", "all"), ("label_smoothing", 0.1)),
        ),
        Recipe(
            "synthetic-demo",
            "The embedded synthetic shapes data set on the 'cifar' variant: a few minutes on 2 CPU cores.",
            (("data", "synthetic"), ("variant", "cifar"), ("strategy", "scratch"), ("epochs", 5),
             ("batch_size", 64), ("lr", 0.05), ("schedule", "onecycle"), ("warmup_epochs", 1.0),
             ("augment", "cifar"), ("synthetic_per_class", 250), ("label_smoothing", 0.1), ("dropout", 0.3)),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise unknown_name_error("recipe", name, RECIPES)
    return RECIPES[name]
