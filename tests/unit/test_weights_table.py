"""The weights table (weights.registry.ENTRIES) is the one home of weight facts: every other name
for a weight set is derived from it, and what the public API exposes agrees with the derivation.

Projections checked: timm's model names and `name.tag` pretrained names, torchvision's weight
enum strings ('IMAGENET1K_V1', 'DEFAULT'), the Keras face's weight names (keras.applications'
`weights=` for AlexNet / preprocess_input / decode_predictions), each variant's default
preprocessing, and the model card's figures. No framework is imported except where a test says.
"""

from __future__ import annotations

import pytest

from alexnet_lab.core.preprocessing import CIFAR_32
from alexnet_lab.core.spec import DEFAULT_VARIANT, VARIANTS
from alexnet_lab.weights import catalog
from alexnet_lab.weights.registry import ENTRIES, default_entry, default_preprocess, get_entry


def _expected_pretrained_names() -> list[str]:
    return sorted(f"{name}.{entry.tag}" for entry in ENTRIES.values() for name, variant in catalog.MODEL_NAMES.items()
                  if variant == entry.variant and default_entry(variant) is entry)


def test_timm_names_are_derived_from_the_variants_and_the_table():
    assert catalog.list_models() == sorted({"alexnet", *(catalog.model_name(v) for v in VARIANTS)})
    assert catalog.list_models(pretrained=True) == _expected_pretrained_names()
    assert "alexnet_owt.tv_in1k" in _expected_pretrained_names()  # timm's spelling people know
    for entry in ENTRIES.values():
        cfg = catalog.model_cfg(entry.variant, entry.name, len(entry.category_names), entry.preprocess)
        assert cfg["tag"] == entry.tag and catalog.variant_of(f"{cfg['architecture']}.{entry.tag}") == entry.variant


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_torchvision_enum_strings_resolve_through_the_table(variant):
    entry = default_entry(variant)
    assert catalog.resolve_weights_name("DEFAULT", variant) == (entry.name if entry else "DEFAULT")
    for listed in ENTRIES.values():
        for enum in listed.enum_names:
            assert catalog.resolve_weights_name(enum, variant) == listed.name
    strings = catalog.torchvision_enum_strings()
    assert strings == {"AlexNet_Weights.IMAGENET1K_V1": "torchvision"}  # torchvision's one AlexNet enum member
    assert all(catalog.resolve_weights_name(text, variant) == name for text, name in strings.items())
    assert get_entry("imagenet") is ENTRIES["torchvision"]  # the alias the CLI documents


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_has_one_default_preprocessing(variant):
    entry = default_entry(variant)
    expected = entry.preprocess if entry else CIFAR_32
    assert default_preprocess(variant) == expected
    assert catalog.model_cfg(variant, None, 1)["preprocess"] == expected.to_dict()
    from alexnet_lab.train.job import scratch_preprocess
    from alexnet_lab.weights.files import default_preprocess as files_default

    assert scratch_preprocess(variant, 0) == expected and files_default is default_preprocess


def test_every_default_is_the_first_entry_of_its_variant():
    seen: dict[str, str] = {}
    for entry in ENTRIES.values():
        seen.setdefault(entry.variant, entry.name)
        assert entry.tag, f"{entry.name} has no timm tag"
    assert {v: default_entry(v).name for v in seen} == seen
    assert default_entry(DEFAULT_VARIANT) is ENTRIES["torchvision"]


def test_the_keras_face_takes_the_table_names():
    """keras.applications' `weights=`: every registry name and alias gives the entry's own
    preprocessing and class IDs (imports Keras)."""
    import numpy as np

    from alexnet_lab.frameworks.keras import decode_predictions, preprocess_input

    batch = np.random.default_rng(0).uniform(0, 255, size=(1, 8, 8, 3)).astype(np.float32)
    for entry in ENTRIES.values():
        for name in entry.names:
            np.testing.assert_allclose(preprocess_input(batch.copy(), weights=name),
                                       entry.preprocess.normalize(batch, -1), rtol=1e-5, atol=1e-4)
            top = decode_predictions(np.eye(len(entry.category_names), dtype=np.float32)[:1], top=1, weights=name)
            assert top[0][0][:2] == (entry.class_ids()[0], entry.category_names[0])
