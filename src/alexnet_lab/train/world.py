"""Which process of a distributed run this is, read from the launcher's environment.

`torchrun` (and any launcher following its convention) sets RANK, WORLD_SIZE and LOCAL_RANK for
every process it starts. Read here without importing a framework, so the framework-neutral run
code can decide who writes the run folder: rank 0 alone writes; every rank computes.
"""

from __future__ import annotations

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
