"""`alexnet benchmark --data FOLDER`: real photos through the PyTorch training input, ours beside
the plain torchvision recipe, one process per measurement (bench.worker).

- ours: `alexnet train`'s streamed store (data.stream), its ImageNet training views
  (data.train_views, torchvision's uint8 resize), its DataLoader (train.torch.data) and its own
  step (train.torch.step.build_step: the batch normaliser, `--precision auto`, channels-last, its
  optimizer);
- reference: ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize,
  a DataLoader with the same workers, torchvision's alexnet, the same autocast and layout, and
  the optimizer settings `alexnet train` uses by default (reference_sgd), so both sides do the same
  work per step.

Each reports `loader_img_s` (the loader alone), `train_img_s` (loader + step, end to end),
`step_img_s` (the step alone on a batch in memory), `fed` = loader / step, and
`view_img_s_per_core` (decode + augment of one sample, images per CPU-second of one thread).
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from alexnet_lab.bench.settings import BenchSettings, reference_sgd

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def loader_workers(settings: BenchSettings) -> int:
    """The workers both sides get: --num-workers, else what `alexnet train` picks for a stream on the CPU."""
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.torch.data import loader_workers as train_workers

    return train_workers(settings.workers, StreamedImages([], TORCHVISION_IMAGENET), torch.device("cpu"))


def _ours(settings: BenchSettings, folder: str, workers: int):
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data import IMAGENET_AUGMENT, read_class_folder
    from alexnet_lab.data.datasets import normalisation
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.config import RunConfig
    from alexnet_lab.train.torch.data import StoreDataset, make_loader
    from alexnet_lab.train.torch.step import build_step

    index = read_class_folder(folder)
    dataset = StoreDataset(StreamedImages(index.paths, TORCHVISION_IMAGENET), index.labels, settings.size,
                           IMAGENET_AUGMENT, seed=0)
    loader = make_loader(dataset, settings.batch, True, 0, 0, workers)
    config = RunConfig(variant=settings.variant, batch_size=settings.batch, lr=0.01, device="cpu")
    trainer = build_step(config, len(index.class_names), settings.size, normalisation(TORCHVISION_IMAGENET),
                         torch.device("cpu"))
    return dataset, loader, lambda images, labels: trainer.step(images, labels, 1.0), trainer.precision.name


def _reference(settings: BenchSettings, folder: str, workers: int):
    import torchvision
    from torchvision import transforms as T

    from alexnet_lab.frameworks.torch.device import resolve_precision

    recipe = T.Compose([T.RandomResizedCrop(settings.size), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize(MEAN, STD)])
    dataset = torchvision.datasets.ImageFolder(folder, recipe)
    loader = torch.utils.data.DataLoader(dataset, batch_size=settings.batch, shuffle=True, num_workers=workers)
    model = torchvision.models.alexnet(num_classes=len(dataset.classes)).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, **reference_sgd())
    precision = resolve_precision("auto", torch.device("cpu"))

    def step(images, labels):
        with precision.autocast(torch.device("cpu")):
            loss = F.cross_entropy(model(images.contiguous(memory_format=torch.channels_last)).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return dataset, loader, step, precision.name


def _per_core(dataset, count: int) -> float:
    """Samples per CPU-second of this one-thread process: other processes' load does not count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dataset[0]
    start = time.process_time()
    for i in range(1, count + 1):
        dataset[i % len(dataset)]
    seconds = time.process_time() - start
    torch.set_num_threads(threads)
    return count / seconds


def _loader_alone(loader) -> float:
    """Images/s after the first batch (the workers' start-up is left out)."""
    batches = iter(loader)
    next(batches)
    start, count = time.perf_counter(), 0
    for images, _ in batches:
        count += len(images)
    return count / (time.perf_counter() - start)


def measure_data(impl: str, settings: BenchSettings, folder: str) -> dict:
    """The five figures of one side (module docstring), in this process."""
    from alexnet_lab.core.preprocessing import TORCHVISION_IMAGENET
    from alexnet_lab.data.stream import StreamedImages
    from alexnet_lab.train.torch.data import step_threads

    workers = loader_workers(settings)
    torch.manual_seed(0)
    ours = impl == "ours"
    dataset, loader, step, precision = (_ours if ours else _reference)(settings, folder, workers)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    else:  # both sides get the threads `alexnet train` sizes for its streamed store's workers
        step_threads(workers, dataset.images if ours else StreamedImages([], TORCHVISION_IMAGENET), torch.device("cpu"))
    result = {"view_img_s_per_core": _per_core(dataset, settings.view_samples), "loader_img_s": _loader_alone(loader)}
    batches = iter(loader)
    first = next(batches)
    step(*first)  # warm-up: oneDNN primitives
    start, count = time.perf_counter(), 0
    for images, labels in batches:
        step(images, labels)
        count += len(images)
    result["train_img_s"] = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(settings.train_steps):
        step(*first)
    result["step_img_s"] = settings.train_steps * len(first[0]) / (time.perf_counter() - start)
    result["fed"] = result["loader_img_s"] / result["step_img_s"]
    return {**result, "workers": workers, "threads": torch.get_num_threads(), "train_precision": precision,
            "images": len(dataset), "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")}
