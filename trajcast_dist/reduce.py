"""The processes that share one job, as the code that sums over them sees them.

One process uses `LocalReducer`; a distributed forecast passes an MPI-backed reducer
(`trajcast_dist.parallel.comm.MPIReducer`) and training its torch.distributed group
(`trajcast_dist.training.distributed.Dist`), with the same methods, so the model, the dynamics and the
metrics never know how many processes share the work.
"""

import torch

__all__ = ["Reducer", "LocalReducer"]


class Reducer:
    """Interface: sums over all ranks, a value from rank 0, agreement on a flag, a barrier."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """The process that writes files and logs."""
        return self.rank == 0

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of `x` over all ranks (every rank gets the result)."""
        raise NotImplementedError

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        """Rank 0's `x` on every rank (random draws are made once, on rank 0)."""
        raise NotImplementedError

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank (stop conditions agree)."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait until every rank has arrived."""
        raise NotImplementedError


class LocalReducer(Reducer):
    """One process holds the whole system: every reduction is the identity."""

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def any(self, flag: bool) -> bool:
        return bool(flag)

    def barrier(self) -> None:
        pass
