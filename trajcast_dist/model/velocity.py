"""Velocity-magnitude embedding, species-weighted Gaussians (paper eq. 1)."""

import math

import torch
from torch import nn

__all__ = ["VelocityGaussians"]


class VelocityGaussians(nn.Module):
    """R_μ(v_i) = Σ_m W_{Z_i, μ m} φ_m(v_i): M Gaussians on [0, v_max] mixed by a per-species matrix.

    v_max is a multiple of the Maxwell–Boltzmann v_RMS of the lightest element (paper Methods); speeds above
    v_max fall in the tail of the last Gaussian rather than being clipped.

    `layout` "endpoints" puts the centres on [0, v_max] with σ = their spacing; "interior" is the layout of e3nn's
    soft_one_hot_linspace(cutoff=True) that the reference implementation uses: centres strictly inside (0, v_max),
    spacing v_max/(M+1), exp(−(Δv/spacing)²), i.e. σ = spacing/√2.
    """

    def __init__(self, num_species: int, v_max: float, num_basis: int = 8, layout: str = "endpoints"):
        super().__init__()
        if layout == "interior":
            grid = torch.linspace(0.0, float(v_max), num_basis + 2)
            self.register_buffer("centers", grid[1:-1].clone())
            self.width = float(grid[1] - grid[0]) / math.sqrt(2.0)
        else:
            self.register_buffer("centers", torch.linspace(0.0, float(v_max), num_basis))
            self.width = float(v_max) / (num_basis - 1)
        self.weights = nn.Parameter(torch.eye(num_basis).repeat(num_species, 1, 1))
        self.dim = num_basis

    def forward(self, speed: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        phi = torch.exp(-0.5 * ((speed.unsqueeze(-1) - self.centers) / self.width) ** 2)
        return torch.einsum("nm,nkm->nk", phi, self.weights[species])
