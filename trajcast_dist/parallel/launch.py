"""How many processes were launched (mpirun/mpiexec/srun), read from the launcher's environment so a
single-process run never initialises MPI."""

import os

__all__ = ["world_size", "world_rank", "local_rank"]

_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK")


def world_size() -> int:
    for name in _SIZE_VARS:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    if os.environ.get("SLURM_STEP_NUM_TASKS", "").isdigit() and "SLURM_PROCID" in os.environ:
        return int(os.environ["SLURM_STEP_NUM_TASKS"])  # srun without an MPI launcher's variables
    return 1


def world_rank() -> int:
    for name in _RANK_VARS:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def local_rank() -> int:
    for name in _LOCAL_RANK_VARS:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0
