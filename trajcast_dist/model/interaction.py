"""One message-passing layer (paper eqs. 2–3 and Fig. 1C–D)."""

import math
from typing import NamedTuple

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from trajcast_dist.model.mlp import RadialMLP

__all__ = ["EdgeTensorProduct", "VelocityTensorProduct", "SpeciesResidual", "InteractionLayer", "gate_for",
           "EdgeInputs"]


class EdgeInputs(NamedTuple):
    """What a layer needs from the graph, computed once per forward pass."""

    edge_index: torch.Tensor  # (2, E) senders, receivers
    edge_sh: torch.Tensor  # (E, 9) Y(r̂_ij)
    edge_radial: torch.Tensor  # (E, num_bessel) R(r_ij)
    edge_length: torch.Tensor  # (E,) r_ij in Å (the tabulated fast path reads this instead of R)
    speed: torch.Tensor  # (N,) |v_i| in Å/fs
    species: torch.Tensor  # (N,) species index


class EdgeTensorProduct(nn.Module):
    """m_ij = h_j ⊗ Y(r̂_ij) with path weights MLP_e(R(r_ij)) (paper eq. 2)."""

    def __init__(self, backend, irreps_in, irreps_sh, lmax: int, radial_dim: int, mlp_hidden: list[int]):
        super().__init__()
        self.tp = backend.ChannelwiseTP(irreps_in, irreps_sh, lmax)
        self.mlp = RadialMLP(radial_dim, mlp_hidden, self.tp.weight_numel)
        self.irreps_in, self.irreps_out = self.tp.irreps_in, self.tp.irreps_out

    def forward(self, h_senders, edge_sh, edge_radial):
        return self.tp(h_senders, edge_sh, self.mlp(edge_radial))

    def pooled(self, h, edges: EdgeInputs) -> torch.Tensor:
        """Σ_j m_ij for every node i (not yet divided by the average neighbour count)."""
        senders, receivers = edges.edge_index
        messages = self(h[senders], edges.edge_sh, edges.edge_radial)
        pooled = torch.zeros(h.shape[0], messages.shape[1], dtype=h.dtype, device=h.device)
        return pooled.index_add_(0, receivers, messages)


class VelocityTensorProduct(nn.Module):
    """m̃_i = m_i ⊗ Y(v̂_i) with path weights MLP_v(R(v_i, Z_i)) (paper eq. 3)."""

    def __init__(self, backend, irreps_in, irreps_sh, lmax: int, velocity_dim: int, mlp_hidden: list[int]):
        super().__init__()
        self.tp = backend.ChannelwiseTP(irreps_in, irreps_sh, lmax)
        self.mlp = RadialMLP(velocity_dim, mlp_hidden, self.tp.weight_numel)
        self.irreps_in, self.irreps_out = self.tp.irreps_in, self.tp.irreps_out

    def forward(self, m, velocity_sh, velocity_embedding, edges: EdgeInputs | None = None):
        return self.tp(m, velocity_sh, self.mlp(velocity_embedding))


class SpeciesResidual(nn.Module):
    """Element-dependent linear self-interaction of the previous features (as in MACE): one linear map per species."""

    def __init__(self, backend, irreps_in, irreps_out, num_species: int):
        super().__init__()
        self.linears = nn.ModuleList(backend.Linear(irreps_in, irreps_out) for _ in range(num_species))
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)

    def forward(self, h, species_onehot):
        out = 0.0
        for s, linear in enumerate(self.linears):
            out = out + species_onehot[:, s : s + 1] * linear(h)
        return out


GATE_ACTIVATIONS = {"sigmoid": torch.sigmoid, "silu": torch.nn.functional.silu}


def gate_for(hidden: o3.Irreps, gate_activation: str = "sigmoid") -> Gate:
    """Gate of the paper: SiLU on even scalars, tanh on odd scalars, l > 0 features scaled by activated even
    scalars (sigmoid here; the reference implementation's default is SiLU)."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in hidden if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in hidden if ir.l > 0])
    acts = [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars]
    gates = o3.Irreps(f"{gated.num_irreps}x0e")
    return Gate(scalars, acts, gates, [GATE_ACTIVATIONS[gate_activation]], gated)


class InteractionLayer(nn.Module):
    """Message, constant-average pooling, linear, velocity TP, gate, species residual; h ← (update + res)/√2.

    Pooling divides by a fixed average neighbour count (a dataset statistic), so the layer stays local:
    an atom's update depends only on its neighbours' features, which the halo exchange provides.
    """

    def __init__(self, backend, irreps_in, hidden, irreps_sh, lmax, num_species, radial_dim, velocity_dim,
                 mlp_hidden, avg_num_neighbors: float, gate_activation: str = "sigmoid"):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.gate = gate_for(o3.Irreps(hidden), gate_activation)
        self.irreps_out = self.gate.irreps_out
        self.edge_tp = EdgeTensorProduct(backend, self.irreps_in, irreps_sh, lmax, radial_dim, mlp_hidden)
        self.linear_message = backend.Linear(self.edge_tp.irreps_out, self.irreps_out)
        self.velocity_tp = VelocityTensorProduct(backend, self.irreps_out, irreps_sh, lmax, velocity_dim,
                                                 mlp_hidden)
        self.linear_update = backend.Linear(self.velocity_tp.irreps_out, self.gate.irreps_in)
        self.residual = SpeciesResidual(backend, self.irreps_in, self.irreps_out, num_species)
        self.register_buffer("inv_avg_num_neighbors", torch.tensor(1.0 / float(avg_num_neighbors)))

    def forward(self, h, species_onehot, velocity_sh, velocity_embedding, edges: EdgeInputs):
        m = self.linear_message(self.edge_tp.pooled(h, edges) * self.inv_avg_num_neighbors)
        update = self.gate(self.linear_update(self.velocity_tp(m, velocity_sh, velocity_embedding, edges)))
        return (update + self.residual(h, species_onehot)) * (1.0 / math.sqrt(2.0))
