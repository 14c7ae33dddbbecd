"""Edge-length embedding: trainable Bessel functions × polynomial cutoff (paper Methods, as in NequIP/DimeNet)."""

import math

import torch
from torch import nn

__all__ = ["BesselBasis", "PolynomialCutoff", "RadialEmbedding"]


class BesselBasis(nn.Module):
    """e_n(r) = √(2/r_c) sin(ω_n r)/(r + ε) with ω_n initialised to nπ/r_c and trainable.

    ε = 0 by default; the reference implementation (IBM/trajcast) uses ε = 1e-5 Å, kept as an option so its
    models import exactly.
    """

    def __init__(self, cutoff_A: float, num_basis: int = 8, trainable: bool = True, epsilon_A: float = 0.0):
        super().__init__()
        self.cutoff_A = float(cutoff_A)
        self.epsilon_A = float(epsilon_A)
        self.prefactor = math.sqrt(2.0 / self.cutoff_A)
        frequencies = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / self.cutoff_A
        self.frequencies = nn.Parameter(frequencies, requires_grad=trainable)
        self.num_basis = num_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / (r + self.epsilon_A)


class PolynomialCutoff(nn.Module):
    """u(x) = 1 − (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) − p(p+1)/2 x^(p+2), x = r/r_c; smooth to zero at r_c."""

    def __init__(self, cutoff_A: float, p: int = 6):
        super().__init__()
        self.cutoff_A = float(cutoff_A)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.cutoff_A
        p = self.p
        u = (1.0 - 0.5 * (p + 1.0) * (p + 2.0) * x.pow(p) + p * (p + 2.0) * x.pow(p + 1.0)
             - 0.5 * p * (p + 1.0) * x.pow(p + 2.0))
        return u * (x < 1.0)


class RadialEmbedding(nn.Module):
    """R(r_ij) = Bessel(r_ij) · u(r_ij): the input of every layer's radial MLP."""

    def __init__(self, cutoff_A: float, num_basis: int = 8, p: int = 6, trainable: bool = True,
                 epsilon_A: float = 0.0):
        super().__init__()
        self.bessel = BesselBasis(cutoff_A, num_basis, trainable, epsilon_A)
        self.cutoff = PolynomialCutoff(cutoff_A, p)
        self.dim = num_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.bessel(r) * self.cutoff(r).unsqueeze(-1)
