"""Which process of a distributed run this is, read from the launcher's environment.

`torchrun` (and any launcher following its convention) sets RANK, WORLD_SIZE and LOCAL_RANK for
every process it starts; Keras' multi-worker training reads the cluster from TF_CONFIG. Both are
read here without importing a framework, so the framework-neutral run code can decide who writes
the run folder: rank 0 (the chief) alone writes; every process computes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from alexnet_lab.core.errors import UserInputError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def split_batch(self, batch_size: int) -> int:
        """Each process's part of the global batch `batch_size` (PyTorch DDP needs an even split)."""
        if batch_size % self.size:
            raise UserInputError(f"--batch-size {batch_size} does not split evenly over {self.size} processes; "
                                 f"use a multiple of {self.size} (it is the global batch).")
        return batch_size // self.size

    def share(self, count: int) -> int:
        """Items of `count` each process gets per epoch (its share, padded to one length for all)."""
        return -(-count // self.size)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> World:
        env = os.environ if environ is None else environ
        try:
            size = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise UserInputError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({exc}); "
                                 "start distributed runs with torchrun.") from None
        if size < 1 or not 0 <= rank < size:
            raise UserInputError(f"RANK={rank} does not fit WORLD_SIZE={size}; start distributed runs with torchrun.")
        return cls(rank, size, local_rank)


TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a TF_CONFIG cluster."""

    task_type: str  # 'worker' or 'chief'
    index: int
    workers: int  # machines in the cluster, a separate chief included
    is_chief: bool  # writes the run folder: the 'chief' task, else worker 0
    rank: int = 0  # position among all tasks: the chief 0, then the workers in order


def parse_tf_config(text: str | None) -> ClusterTask:
    """Read and check TF_CONFIG (the JSON MultiWorkerMirroredStrategy reads).

    Raises:
        UserInputError: TF_CONFIG is missing, not JSON, or does not describe this task in a cluster.
    """
    hint = f"set it on every machine, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (see docs/distributed.md)."
    if not text or not text.strip():
        raise UserInputError(f"--distribute multi-worker reads the cluster from TF_CONFIG, which is not set; {hint}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {hint}") from None
    cluster = doc.get("cluster") if isinstance(doc, dict) else None
    task = doc.get("task") if isinstance(doc, dict) else None
    jobs = {"chief", "worker"}
    if (not isinstance(cluster, dict) or not cluster or set(cluster) - jobs
            or not all(isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v)
                       for v in cluster.values())):
        raise UserInputError(f"TF_CONFIG needs 'cluster': {{'worker': ['host:port', ...]}} (optionally 'chief'); "
                             f"received cluster={cluster!r}; {hint}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise UserInputError(f"TF_CONFIG needs 'task': {{'type': one of {sorted(cluster)}, 'index': its position in "
                             f"that list}}; received task={task!r}; {hint}")
    is_chief = task["type"] == "chief" or ("chief" not in cluster and task["index"] == 0)
    rank = 0 if task["type"] == "chief" else task["index"] + len(cluster.get("chief", []))
    return ClusterTask(task["type"], task["index"], sum(len(v) for v in cluster.values()), is_chief, rank)


def current_world(distribute: str = "none") -> World:
    """This process's place: from TF_CONFIG for Keras multi-worker runs, else from torchrun's variables."""
    if distribute != "multi-worker":
        return World.from_env()
    task = parse_tf_config(os.environ.get("TF_CONFIG"))
    return World(task.rank, task.workers, 0)
