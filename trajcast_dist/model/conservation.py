"""Conservation layer (paper Fig. 1E and Methods): remove the centre-of-mass displacement, restore the input
linear momentum and, for isolated molecules, the input angular momentum.

Every sum goes through a `Reducer`, so with P ranks the corrections use the whole system's totals.
"""

import torch
from torch import nn

from trajcast_dist.reduce import Reducer

__all__ = ["Conservation"]


def _per_graph(values: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
    out = torch.zeros((n_graphs, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, batch, values)


class Conservation(nn.Module):
    def __init__(self, periodic: bool):
        super().__init__()
        self.periodic = bool(periodic)

    def forward(self, displacement, velocity, positions, velocity_in, masses, batch, n_graphs: int,
                reducer: Reducer):
        m = masses.unsqueeze(-1)
        total_mass = reducer.sum(_per_graph(masses, batch, n_graphs)).unsqueeze(-1)
        com_shift = reducer.sum(_per_graph(m * displacement, batch, n_graphs)) / total_mass
        displacement = displacement - com_shift[batch]
        excess_p = reducer.sum(_per_graph(m * (velocity - velocity_in), batch, n_graphs))
        velocity = velocity - (excess_p / total_mass)[batch]
        if not self.periodic:
            velocity = self._restore_angular_momentum(velocity, positions, velocity_in, displacement, masses,
                                                      batch, n_graphs, total_mass, reducer)
        return displacement, velocity

    @staticmethod
    def _restore_angular_momentum(velocity, positions, velocity_in, displacement, masses, batch, n_graphs,
                                  total_mass, reducer):
        """v ← v − ω × (r′ − r′_com) with I ω = L′ − L (about the centre of mass, new positions for L′ and I)."""
        m = masses.unsqueeze(-1)
        com = reducer.sum(_per_graph(m * positions, batch, n_graphs)) / total_mass
        new_positions = positions + displacement
        rel_in, rel_out = positions - com[batch], new_positions - com[batch]
        angular_in = reducer.sum(_per_graph(m * torch.linalg.cross(rel_in, velocity_in), batch, n_graphs))
        angular_out = reducer.sum(_per_graph(m * torch.linalg.cross(rel_out, velocity), batch, n_graphs))
        eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
        r2 = (rel_out * rel_out).sum(-1)
        inertia_atoms = m.unsqueeze(-1) * (r2[:, None, None] * eye - rel_out.unsqueeze(-1) * rel_out.unsqueeze(-2))
        inertia = reducer.sum(_per_graph(inertia_atoms, batch, n_graphs))
        omega = torch.linalg.solve(inertia, (angular_out - angular_in).unsqueeze(-1)).squeeze(-1)
        return velocity - torch.linalg.cross(omega[batch], rel_out)
