"""Reference backend: e3nn's TensorProduct and Linear."""

import torch
from e3nn import o3
from torch import nn

from trajcast_dist.model.backends import channelwise_paths

__all__ = ["ChannelwiseTP", "Linear"]


class ChannelwiseTP(nn.Module):
    """x ⊗ y with "uvu" paths and weights given per sample (from an MLP), not stored in the module."""

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax: int):
        super().__init__()
        self.irreps_in, self.irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
        self.irreps_out, instructions = channelwise_paths(self.irreps_in, self.irreps_sh, lmax)
        self.tp = o3.TensorProduct(self.irreps_in, self.irreps_sh, self.irreps_out, instructions,
                                   shared_weights=False, internal_weights=False)
        self.weight_numel = self.tp.weight_numel

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.tp(x, y, weights)


class Linear(o3.Linear):
    """Equivariant linear map (self-interaction) between irreps."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__(o3.Irreps(irreps_in), o3.Irreps(irreps_out))
