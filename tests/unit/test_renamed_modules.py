"""Old module paths keep working for a release: importing one warns (DeprecationWarning) and gives
the new module itself, so `from old import name` and monkeypatching the old path both reach it.
The framework modules are checked in a process of their own (one framework per process)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from tests.conftest import REPO

RENAMED = {
    "alexnet_lab.train.stores": "alexnet_lab.train.image_stores",
    "alexnet_lab.train.world": "alexnet_lab.train.launch_env",
    "alexnet_lab.train.strategies": "alexnet_lab.train.phases",
    "alexnet_lab.train.trainers": "alexnet_lab.train.trainer_registry",
    "alexnet_lab.core.partial": "alexnet_lab.core.partial_layout",
    "alexnet_lab.evaluate.on_data": "alexnet_lab.evaluate.dataset_eval",
}
FRAMEWORK_RENAMED = {
    "alexnet_lab.frameworks.torch.taps": "alexnet_lab.frameworks.torch.activations",
    "alexnet_lab.frameworks.keras.taps": "alexnet_lab.frameworks.keras.activations",
}


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_an_old_path_warns_and_is_the_new_module(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=RENAMED[old]):
        module = importlib.import_module(old)
    assert module is importlib.import_module(RENAMED[old])


def test_the_package_itself_uses_no_old_path():
    """Importing every new module (and what it imports) raises no DeprecationWarning."""
    for old in RENAMED:
        sys.modules.pop(old, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for new in RENAMED.values():
            importlib.import_module(new)


@pytest.mark.parametrize("old", sorted(FRAMEWORK_RENAMED))
def test_an_old_framework_path_warns_in_its_own_process(old):
    code = ("import importlib, warnings\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always', DeprecationWarning)\n"
            f"    old = importlib.import_module({old!r})\n"
            f"assert old is importlib.import_module({FRAMEWORK_RENAMED[old]!r})\n"
            f"assert any({FRAMEWORK_RENAMED[old]!r} in str(w.message) for w in caught)\n"
            "assert old.layer_outputs and old.class_gradients\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO / "src"),
                                                                             "PATH": "/usr/bin:/bin"})


def test_old_names_of_moved_objects_warn_and_are_the_objects():
    from alexnet_lab.core.preprocessing import CIFAR_32
    from alexnet_lab.core.softmax import softmax
    from alexnet_lab.inference import predict
    from alexnet_lab.train import job

    with pytest.warns(DeprecationWarning, match="core.preprocessing.CIFAR_32"):
        assert job.CIFAR_PREPROCESS is CIFAR_32
    with pytest.warns(DeprecationWarning, match="core.softmax"):
        assert predict.softmax is softmax
    with pytest.raises(AttributeError):
        job.NOT_A_NAME  # noqa: B018
