"""Global reductions used by the conservation layer and the thermostat.

The serial driver uses `LocalReducer`; the distributed driver passes an MPI-backed reducer
(`trajcast_dist.parallel.comm.MPIReducer`) with the same three methods, so the model and the
dynamics never know how many processes share the system.
"""

import torch

__all__ = ["Reducer", "LocalReducer"]


class Reducer:
    """Interface: sums over all ranks, a value from rank 0, and agreement on a flag."""

    rank: int = 0
    size: int = 1

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of `x` over all ranks (every rank gets the result)."""
        raise NotImplementedError

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        """Rank 0's `x` on every rank (random draws are made once, on rank 0)."""
        raise NotImplementedError

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank (stop conditions agree)."""
        raise NotImplementedError


class LocalReducer(Reducer):
    """One process holds the whole system: every reduction is the identity."""

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def any(self, flag: bool) -> bool:
        return bool(flag)
