"""How one process runs, for forecasting and training alike: dtypes, CPU threads, the device."""

import os

import torch

from trajcast_dist.errors import UserError

__all__ = ["DTYPES", "set_threads", "usable_cores", "resolve_device"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def set_threads(threads, ranks_per_node: int) -> None:
    """Oversubscribed intra-op threads make each step many times slower (two 2-thread forecasts on 2 cores:
    20× slower each): `threads`, else OMP_NUM_THREADS as the user set it, else cores / ranks."""
    if not threads and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])
    torch.set_num_threads(threads or max(1, usable_cores() // max(1, ranks_per_node)))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a Slurm allocation), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_device(device: str, local_rank: int) -> torch.device:
    """cpu, cuda (this rank's GPU: local rank modulo the visible GPUs), cuda:N, or auto (cuda when a GPU is
    visible, else cpu)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA GPU is visible; use --device cpu")
        if device == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(device)
