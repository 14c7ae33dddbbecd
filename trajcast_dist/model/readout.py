"""Readout: the l=1 odd features of the last layer → Δr′ and v′ (paper Results, "TrajCast Framework")."""

import torch
from e3nn import o3
from torch import nn

__all__ = ["Readout"]


class Readout(nn.Module):
    """Two linear maps of the 1o channels to one vector each, scaled by the targets' RMS (dataset statistics):
    one global RMS (the paper), or one per species (`species_rms`: (displacement, velocity) lists)."""

    def __init__(self, backend, irreps_in, displacement_rms_A: float, velocity_rms_A_per_fs: float,
                 num_species: int, species_rms: tuple[list[float], list[float]] | None = None):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.vector_slices = [s for s, (_, ir) in zip(self.irreps_in.slices(), self.irreps_in) if ir == o3.Irrep("1o")]
        vectors = o3.Irreps([(mul, ir) for mul, ir in self.irreps_in if ir == o3.Irrep("1o")])
        self.displacement = backend.Linear(vectors, "1x1o")
        self.velocity = backend.Linear(vectors, "1x1o")
        self.register_buffer("displacement_rms", torch.tensor(float(displacement_rms_A)))
        self.register_buffer("velocity_rms", torch.tensor(float(velocity_rms_A_per_fs)))
        # Per-species factors on the global RMS, built from the config (1 without per-species scales, so the
        # paper's model computes the same numbers).
        factors = torch.ones(num_species, 2, dtype=torch.float64)
        if species_rms is not None:
            factors = torch.tensor(list(zip(*species_rms)), dtype=torch.float64) / torch.tensor(
                [float(displacement_rms_A), float(velocity_rms_A_per_fs)], dtype=torch.float64)
        self.register_buffer("species_factors", factors, persistent=False)

    def forward(self, h, species):
        vectors = torch.cat([h[:, s] for s in self.vector_slices], dim=1)
        scale_d, scale_v = self.scales(species)
        return self.displacement(vectors) * scale_d, self.velocity(vectors) * scale_v

    def scales(self, species: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each atom's output scales (N, 1): Å and Å/fs. The training loss normalises errors by the same."""
        factors = self.species_factors.to(self.displacement_rms.dtype)[species]
        return self.displacement_rms * factors[:, :1], self.velocity_rms * factors[:, 1:]
