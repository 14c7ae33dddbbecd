"""Conservation layer (paper Fig. 1E and Methods): remove the centre-of-mass displacement, restore the input
linear momentum and, for isolated molecules, the input angular momentum.

Every sum goes through a `Reducer`, so with P ranks the corrections use the whole system's totals.

The reference implementation (IBM/trajcast) has three variations, kept as options so its models import exactly:
target total momenta given in the model (`net_lin_mom`, `net_ang_mom`) instead of the input's, the centre-of-mass
displacement removed only when the target momentum is exactly zero, and the angular-momentum correction chosen
by its own flag rather than by periodicity.
"""

import torch
from torch import nn

from trajcast_dist.reduce import Reducer

__all__ = ["Conservation"]


def _per_graph(values: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
    out = torch.zeros((n_graphs, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, batch, values)


class Conservation(nn.Module):
    def __init__(self, angular: bool, com_displacement: str = "remove", net_lin_mom=None, net_ang_mom=None):
        super().__init__()
        self.angular = bool(angular)
        self.com_displacement = com_displacement
        # targets as plain tuples, not buffers: model files of earlier versions have no such entries
        self.net_lin_mom = None if net_lin_mom is None else tuple(float(x) for x in net_lin_mom)
        self.net_ang_mom = None if net_ang_mom is None else tuple(float(x) for x in net_ang_mom)

    @classmethod
    def from_config(cls, config) -> "Conservation":
        angular = (not config.periodic) if config.conserve_ang_mom is None else config.conserve_ang_mom
        return cls(angular, config.com_displacement, config.net_lin_mom, config.net_ang_mom)

    def forward(self, displacement, velocity, positions, velocity_in, masses, batch, n_graphs: int,
                reducer: Reducer):
        m = masses.unsqueeze(-1)
        total_mass = reducer.sum(_per_graph(masses, batch, n_graphs)).unsqueeze(-1)
        com_shift = reducer.sum(_per_graph(m * displacement, batch, n_graphs)) / total_mass
        if self.net_lin_mom is None and self.com_displacement == "remove":
            excess_p = reducer.sum(_per_graph(m * (velocity - velocity_in), batch, n_graphs))
            keep_com = torch.zeros(n_graphs, 1, dtype=torch.bool, device=displacement.device)
        else:
            target_p = self._target(self.net_lin_mom, m * velocity_in, batch, n_graphs, reducer)
            excess_p = reducer.sum(_per_graph(m * velocity, batch, n_graphs)) - target_p
            keep_com = self._keeps_com(target_p)
        displacement = displacement - torch.where(keep_com, 0.0, com_shift)[batch]
        velocity = velocity - (excess_p / total_mass)[batch]
        if self.angular:
            # the new centre of mass moved by the displacement that was kept (zero where it was removed)
            com_moved = torch.where(keep_com, com_shift, 0.0)
            velocity = self._restore_angular_momentum(velocity, positions, velocity_in, displacement, masses,
                                                      batch, n_graphs, total_mass, com_moved, reducer)
        return displacement, velocity

    def _keeps_com(self, target_p: torch.Tensor) -> torch.Tensor:
        """Per graph: is the centre-of-mass displacement kept? Only under the reference rule, for a non-zero
        target momentum (a drifting system keeps its drift)."""
        if self.com_displacement == "remove":
            return torch.zeros(target_p.shape[0], 1, dtype=torch.bool, device=target_p.device)
        return (target_p != 0.0).any(dim=-1, keepdim=True)

    @staticmethod
    def _target(fixed, per_atom, batch, n_graphs, reducer) -> torch.Tensor:
        """The configured total (same for every graph) or the input's."""
        if fixed is not None:
            return per_atom.new_tensor(fixed).expand(n_graphs, 3)
        return reducer.sum(_per_graph(per_atom, batch, n_graphs))

    def _restore_angular_momentum(self, velocity, positions, velocity_in, displacement, masses, batch, n_graphs,
                                  total_mass, com_moved, reducer):
        """v ← v − ω × (r′ − r′_com) with I ω = L′ − L, each about its own centre of mass (new positions for L′
        and I; L may be a configured target)."""
        m = masses.unsqueeze(-1)
        com = reducer.sum(_per_graph(m * positions, batch, n_graphs)) / total_mass
        new_positions = positions + displacement
        rel_in, rel_out = positions - com[batch], new_positions - (com + com_moved)[batch]
        angular_in = self._target(self.net_ang_mom, m * torch.linalg.cross(rel_in, velocity_in), batch, n_graphs,
                                  reducer)
        angular_out = reducer.sum(_per_graph(m * torch.linalg.cross(rel_out, velocity), batch, n_graphs))
        eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
        r2 = (rel_out * rel_out).sum(-1)
        inertia_atoms = m.unsqueeze(-1) * (r2[:, None, None] * eye - rel_out.unsqueeze(-1) * rel_out.unsqueeze(-2))
        inertia = reducer.sum(_per_graph(inertia_atoms, batch, n_graphs))
        omega = torch.linalg.solve(inertia, (angular_out - angular_in).unsqueeze(-1)).squeeze(-1)
        return velocity - torch.linalg.cross(omega[batch], rel_out)
