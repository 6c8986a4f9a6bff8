"""The framework registry's facts: one :class:`FrameworkEntry` per framework, every fact about a
framework that the rest of the package needs without importing it.

No module names here and no import: the dispatch tables (``frameworks.FRAMEWORKS`` for the
Backend, ``frameworks.weight_io`` for weight files, ``train.trainer_registry.TRAINERS``) sit beside the
``importlib.import_module`` call that reads them, where the layout test sees them as edges. A test
checks that every table lists the same names as :data:`ENTRIES`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrameworkEntry:
    """One framework, as the rest of the package may know it.

    Attributes:
        name: the name everything asks for (--framework choices, loops over frameworks).
        weight_suffixes: file endings of its own weight format (read_weights / write_weights).
        also_reads: endings it reads but never writes.
        input_layout: its models' input layout, as trained ('NCHW' or 'NHWC').
        checkpoint_suffix: the ending of its training checkpoints (RUN/checkpoints/last<suffix>).
        train_features: what its training offers beyond the common flags (train.config.supports).
        packages: distributions whose versions a benchmark records.
        hub_tag: its tag on a Hub model card.
        exports: (export format, environment of the process that writes it) for every
            core.exports.EXPORT_FORMATS name it exports.
        modules: the Python modules it loads (what verify reports a process as having loaded).
        data_benchmark: (bench worker measurement, the plain recipe it runs beside ours) of
            `alexnet benchmark --data`.
        early_device_check: its Backend.resolve_device may run in a command's own process, so that
            a missing --device fails there before any worker starts (False where resolving
            would set the device for that whole process, as Keras hides GPUs from TensorFlow).
    """

    name: str
    weight_suffixes: tuple[str, ...]
    input_layout: str
    checkpoint_suffix: str = ""
    also_reads: tuple[str, ...] = ()
    train_features: frozenset[str] = frozenset()
    packages: tuple[str, ...] = ()
    hub_tag: str = ""
    exports: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    modules: tuple[str, ...] = ()
    data_benchmark: tuple[str, str] = ("", "")
    early_device_check: bool = False


ENTRIES: dict[str, FrameworkEntry] = {entry.name: entry for entry in (
    FrameworkEntry("torch", (".pth", ".pt"), "NCHW", checkpoint_suffix=".pt",
                   # torchrun: one process per device (DistributedDataParallel); compile: torch.compile
                   train_features=frozenset({"torchrun", "compile"}), packages=("torch", "torchvision"),
                   hub_tag="pytorch", exports=(("onnx", ()), ("torchscript", ()), ("torch-export", ())),
                   modules=("torch", "torchvision"),
                   data_benchmark=("data", "the torchvision recipe (bench.data_bench)"), early_device_check=True),
    FrameworkEntry("keras", (".weights.h5", ".keras"), "NHWC", checkpoint_suffix=".keras-ckpt.npz",
                   also_reads=(".h5",),  # Keras 2 HDF5 weight files
                   train_features=frozenset({"distribute"}),  # tf.distribute strategies, one process per machine
                   packages=("keras", "tensorflow-cpu", "tensorflow"), hub_tag="keras",
                   # ONNX through Keras' PyTorch backend (torch.onnx); SavedModel needs TensorFlow's
                   exports=(("onnx", (("KERAS_BACKEND", "torch"),)), ("savedmodel", (("KERAS_BACKEND", "tensorflow"),))),
                   modules=("tensorflow", "keras", "jax"),
                   data_benchmark=("keras-data", "a plain tf.data recipe and Keras AlexNet (bench.keras_data_bench)")),
)}
NAMES: tuple[str, ...] = tuple(ENTRIES)  # registry order: the default first
DEFAULT_FRAMEWORK = NAMES[0]  # --framework's default and the Python API's
WEIGHT_SUFFIXES = {name: entry.weight_suffixes for name, entry in ENTRIES.items()}
ALSO_READS = {name: entry.also_reads for name, entry in ENTRIES.items() if entry.also_reads}


def export_frameworks(fmt: str) -> tuple[str, ...]:
    """The frameworks whose models export format `fmt` holds, in registry order (the first is the default)."""
    return tuple(name for name, entry in ENTRIES.items() if fmt in dict(entry.exports))


def framework_for_suffix(suffix: str) -> str | None:
    """The framework whose weight files end in `suffix` (written or only read), or None."""
    return next((e.name for e in ENTRIES.values() if suffix in e.weight_suffixes + e.also_reads), None)
