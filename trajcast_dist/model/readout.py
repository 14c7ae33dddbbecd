"""Readout: the l=1 odd features of the last layer → Δr′ and v′ (paper Results, "TrajCast Framework")."""

import torch
from e3nn import o3
from torch import nn

__all__ = ["Readout"]


class Readout(nn.Module):
    """Two linear maps of the 1o channels to one vector each, scaled by the targets' RMS (dataset statistics)."""

    def __init__(self, backend, irreps_in, displacement_rms_A: float, velocity_rms_A_per_fs: float):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.vector_slices = [s for s, (_, ir) in zip(self.irreps_in.slices(), self.irreps_in) if ir == o3.Irrep("1o")]
        vectors = o3.Irreps([(mul, ir) for mul, ir in self.irreps_in if ir == o3.Irrep("1o")])
        self.displacement = backend.Linear(vectors, "1x1o")
        self.velocity = backend.Linear(vectors, "1x1o")
        self.register_buffer("displacement_rms", torch.tensor(float(displacement_rms_A)))
        self.register_buffer("velocity_rms", torch.tensor(float(velocity_rms_A_per_fs)))

    def forward(self, h):
        vectors = torch.cat([h[:, s] for s in self.vector_slices], dim=1)
        return self.displacement(vectors) * self.displacement_rms, self.velocity(vectors) * self.velocity_rms
