"""Who am I in the job: RANK / WORLD_SIZE / LOCAL_RANK from torchrun (or srun), nanoGPT-style.

One process without launcher variables is world size 1 and never initialises torch.distributed, so
`python -m trajcast_dist.train` and `torchrun --nproc_per_node 1` run the same loop. All collectives go
through `Dist`, so the loop reads the same on every rank and only `is_main` gates logging and files.
"""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from trajcast_dist.errors import UserError
from trajcast_dist.launch import launch_env
from trajcast_dist.reduce import Reducer
from trajcast_dist.runtime import resolve_device

__all__ = ["Dist"]


class Dist(Reducer):
    """The process group of a training job (or its single-process stand-in), as a `Reducer`."""

    def __init__(self, backend: str = "auto", device: str = "auto", timeout_s: float = 1800.0):
        self.env = launch_env()
        self.rank, self.world_size, self.local_rank = self.env.rank, self.env.world_size, self.env.local_rank
        self.device = resolve_device(device, self.local_rank)
        self.backend = _backend(backend, self.device)
        self.initialised = False
        self.timeout = datetime.timedelta(seconds=timeout_s)

    def init(self) -> None:
        """Join the process group (collective: every rank must call it)."""
        if self.world_size == 1 or dist.is_initialized():
            self.initialised = dist.is_initialized()
            return
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        kwargs = {"device_id": self.device} if self.backend == "nccl" else {}
        dist.init_process_group(self.backend, timeout=self.timeout, **kwargs)
        self.initialised = True

    def close(self) -> None:
        """Leave the group cleanly: a gloo group left to interpreter teardown can abort the process."""
        if self.initialised and dist.is_initialized():
            dist.destroy_process_group()
        self.initialised = False

    @property
    def active(self) -> bool:
        return self.initialised and self.world_size > 1

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's `tensor` on every rank (in place; returned for chaining)."""
        if self.active:
            dist.broadcast(tensor, src=0)
        return tensor

    def any(self, flag: bool) -> bool:
        return bool(self.sum(torch.tensor([float(flag)], dtype=torch.float64, device=self.device)) > 0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def _backend(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "nccl" and device.type != "cuda":
        raise UserError("--dist-backend nccl needs GPUs (device is cpu); use --dist-backend gloo or leave it on auto")
    return requested
