"""Structure check: tensor names, shapes and parameter count against the variant's spec.

A file whose shapes do not fit any variant never becomes a WeightBundle, so the runner turns
that LayoutError into a FAILed structure check (:func:`structure_failure`); a loaded bundle is
re-checked here independently of the loader, with the parameter count and the input size its
preprocessing produces.
"""

from __future__ import annotations

from alexnet_lab.core.bundle import WeightBundle
from alexnet_lab.core.errors import AlexnetLabError
from alexnet_lab.core.layout import layout_problems
from alexnet_lab.verify.checks import FAIL, PASS, Check, preview

NAME = "structure"


def check_structure(bundle: WeightBundle) -> Check:
    """PASS when names, shapes, parameter count and input size all fit the variant."""
    meta, arch = bundle.meta, bundle.arch
    problems = layout_problems(bundle.tensors, arch, bundle.num_classes)
    params, expected = bundle.param_count(), arch.param_count(bundle.num_classes)
    if params != expected:
        problems.append(f"{params:,} parameters, expected {expected:,}")
    size = meta.input_size or meta.preprocess.crop
    try:
        arch.check_input_size(size)
    except AlexnetLabError as exc:
        problems.append(f"input size {size} from the preprocessing does not fit: {exc}")
    figures = {"variant": meta.variant, "num_classes": bundle.num_classes, "tensors": len(bundle.tensors),
               "params": params, "expected_params": expected, "input_size": size}
    if problems:
        return Check(NAME, FAIL, f"{len(problems)} problem(s): {preview(problems)}", figures)
    detail = (f"variant '{meta.variant}', {len(bundle.tensors)} tensors, {params:,} parameters as expected "
              f"for {bundle.num_classes} classes, {size}x{size} input")
    return Check(NAME, PASS, detail, figures)


def structure_failure(exc: AlexnetLabError) -> Check:
    """The FAILed structure check for weights whose layout could not be loaded."""
    return Check(NAME, FAIL, str(exc))
