"""The `reproduce` check: `alexnet verify W --images imagenet-val:PATH` evaluates the weights on the
ImageNet validation set under PATH, as `alexnet evaluate W --data imagenet-val --data-dir PATH`
does, and passes when the published top-1/top-5 lie inside the measured 95% intervals
(evaluate.reproduce). SKIP for weights without published figures."""

from __future__ import annotations

from dataclasses import replace

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.data.imagenet_val import IMAGENET_VAL
from alexnet_lab.verify.checks import FAIL, NOT_FINITE, PASS, SKIP, Check

NAME = "reproduce"
PREFIX = f"{IMAGENET_VAL}:"  # --images imagenet-val:PATH


def split_images(options):
    """(options with `images` cleared, PATH) for --images imagenet-val:PATH; (options, None) otherwise."""
    images = options.images or ""
    if not images.startswith(PREFIX):
        return options, None
    return replace(options, images=None), images[len(PREFIX):]


def check_reproduce(bundle: WeightBundle, weights: str, data_dir: str | None, finite: bool) -> list[Check]:
    """[] without imagenet-val; else one check from evaluate_imagenet_val's verdict."""
    if data_dir is None:
        return []
    if not finite:
        return [Check(NAME, SKIP, NOT_FINITE)]
    from alexnet_lab.evaluate.dataset_eval import evaluate_imagenet_val
    from alexnet_lab.evaluate.reproduce import REPRODUCED

    _, val, verdict = evaluate_imagenet_val(bundle, data_dir, str(weights))
    figures = {"layout": val.layout, "reproduce": verdict.to_json_dict()}
    if verdict.verdict is None:
        return [Check(NAME, SKIP, verdict.note, figures)]
    lines = verdict.lines()
    detail = "; ".join(line.strip() for line in lines[:3] if not line.startswith("  check"))
    if verdict.check:
        detail += f"; check {verdict.check[0]}"
    return [Check(NAME, PASS if verdict.verdict == REPRODUCED else FAIL, detail, figures)]
