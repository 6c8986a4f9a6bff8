"""The "see inside" figures on one trained synthetic-shapes model (e.g. the demo's), as the README cites:

    PYTHONPATH=src python benchmarks/see_inside.py runs/demo/run/best.safetensors [--images 200]

Prints one JSON object: feature agreement (max |torch - keras| over each layer's scale, worst
layer), Grad-CAM map correlation between frameworks (min and mean Pearson), the randomisation
check (mean Spearman rank correlation of the maps after fc6-fc8 are re-initialised) and the
pointing game (share of correct predictions whose Grad-CAM peak lies in the object's box, and
chance). Runs PyTorch and Keras in one process: torchvision is imported first (see tests/conftest.py).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torchvision  # noqa: F401 - before TensorFlow, see tests/conftest.py

from alexnet_lab.core.explain import pearson, relative_difference, tap_names
from alexnet_lab.core.preprocessing import preprocess
from alexnet_lab.data.synthetic import SyntheticSpec, synthetic_object_box, synthetic_sample
from alexnet_lab.explain.checks import pointing_game, randomised, rank_correlations
from alexnet_lab.explain.maps import explain_images
from alexnet_lab.frameworks import build_for, get_backend
from alexnet_lab.weights.files import load_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--images", type=int, default=200, help="held-out synthetic images (seed 7)")
    args = parser.parse_args()
    bundle = load_weights(args.weights)
    spec = SyntheticSpec(per_class=args.images // 10, seed=7, size=bundle.input_size)
    images, labels = zip(*(synthetic_sample(spec, i) for i in range(spec.num_images)))
    boxes = [synthetic_object_box(spec, i) for i in range(spec.num_images)]
    batch = np.stack([preprocess(image, bundle.meta.preprocess) for image in images[:32]])
    names = tap_names(bundle.arch)
    ours = get_backend("torch").layer_outputs(build_for(bundle, "torch", "cpu"), batch, names)
    theirs = get_backend("keras").layer_outputs(build_for(bundle, "keras", "cpu"), batch, names)
    agreement = {name: relative_difference(ours[name], theirs[name]) for name in names}
    torch_maps = explain_images(bundle, list(images), "torch", device="cpu")
    keras_maps = explain_images(bundle, list(images[:50]), "keras", device="cpu")
    correlation = [pearson(a.heat, b.heat) for a, b in zip(torch_maps, keras_maps) if a.heat.max() > 0]
    shuffled = randomised(bundle)
    other = [explain_images(shuffled, [im], "torch", target=e.class_index, device="cpu")[0]
             for im, e in zip(images[:50], torch_maps)]
    ranks = rank_correlations(np.stack([e.heat for e in torch_maps[:50]]), np.stack([e.heat for e in other]))
    correct = [i for i, e in enumerate(torch_maps) if e.class_index == labels[i]]
    game = pointing_game([torch_maps[i].peak for i in correct], [boxes[i] for i in correct], bundle.input_size)
    print(json.dumps({
        "feature_agreement_worst": max(agreement.values()), "feature_agreement": agreement,
        "gradcam_correlation_min": min(correlation), "gradcam_correlation_mean": float(np.mean(correlation)),
        "randomised_rank_correlation_mean": float(ranks.mean()), "top1": len(correct) / len(images),
        "localisation_share": game.share, "localisation_chance": game.chance, "localisation_scored": game.scored,
    }, indent=1))


if __name__ == "__main__":
    main()
