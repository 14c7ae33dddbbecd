"""Who launched this process, read from the launcher's environment (one place for every launcher): MPI ranks
(mpirun/mpiexec/srun) for forecasting, so a single-process run never initialises MPI, and torchrun's layout for
training."""

import os
from dataclasses import dataclass

__all__ = ["world_size", "world_rank", "local_rank", "LaunchEnv", "launch_env"]

_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK")


@dataclass(frozen=True)
class LaunchEnv:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def world_size() -> int:
    size = _first(_SIZE_VARS)
    if size is None and "SLURM_PROCID" in os.environ:
        size = _first(("SLURM_STEP_NUM_TASKS",))  # srun without an MPI launcher's variables
    return 1 if size is None else size


def world_rank() -> int:
    return _first(_RANK_VARS) or 0


def local_rank() -> int:
    return _first(_LOCAL_RANK_VARS) or 0


def launch_env() -> LaunchEnv:
    """Rank layout from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE)."""
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return LaunchEnv(0, 1, 0, 1)
    world_size = int(env["WORLD_SIZE"])
    return LaunchEnv(int(env["RANK"]), world_size, int(env.get("LOCAL_RANK", 0)),
                     int(env.get("LOCAL_WORLD_SIZE", world_size)))


def _first(names) -> int | None:
    """The first of the variables `names` that holds a whole number."""
    for name in names:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None
