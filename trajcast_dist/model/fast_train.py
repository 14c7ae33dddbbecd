"""The fast training path (issue #14): the channel-wise tensor products as grouped contractions, with autograd.

`use_fast_training(model)` swaps each layer's edge and velocity tensor products for the modules below, after
construction (as NequIP's model modifiers do). They hold the exact modules' `tp` and `mlp` as submodules, so
the parameters, the state dict and a checkpoint are the exact path's; the MLPs stay exact (their weights
train), only the contraction changes:
- edge: per-edge weights from the MLP, then on CPU the fused C++ kernel (`cpu_kernel.EdgeTPFunction`, a
  hand-written backward for the weights and the node features) — no per-edge message array; elsewhere, or where
  no compiler is present, or when Y(r̂) itself needs a gradient, the grouped torch contraction with autograd;
- velocity: one row per atom, the grouped torch contraction.
The MLP's last layer is applied with its rows already in the grouped order, so no (E, W) gather is needed, and
the edge MLP runs once per distinct edge length: every pair appears as i→j and j→i with bit-identical lengths,
so this halves the largest matrix products of a step, and the kernel reads each edge's row (no (E, W) copy).
The layers' equivariant linears become `SplitLinear`s: e3nn's codegen takes each input irrep with `narrow`,
whose backward zero-fills a full-width gradient per irrep (≈ 60 per layer at the edge product's width, a fifth
of a step's time); `split` returns all pieces' gradients in one concatenation.
"""

import torch
from torch import nn

from trajcast_dist.model import cpu_kernel as fused
from trajcast_dist.model.grouped import GroupedChannelwiseTP
from trajcast_dist.model.interaction import EdgeInputs, EdgeTensorProduct

__all__ = ["GroupedProduct", "GroupedEdgeTensorProduct", "GroupedVelocityTensorProduct", "SplitLinear",
           "use_fast_training", "uses_fast_training"]


class GroupedProduct(nn.Module):
    """What every swapped-in product (fast training and fast inference) takes from the exact module: its `tp` and
    `mlp` (same parameters and state dict), its irreps, the grouped contraction, and the exact module itself for
    `use_exact`."""

    def __init__(self, exact: nn.Module):
        super().__init__()
        self.tp, self.mlp = exact.tp, exact.mlp
        self.irreps_in, self.irreps_out = exact.irreps_in, exact.irreps_out
        self.grouped = GroupedChannelwiseTP(exact.tp)
        self.exact = [exact]  # a list keeps it out of the module tree (and the state dict)


class GroupedEdgeTensorProduct(GroupedProduct):
    """Paper eq. 2 pooled onto receivers: Σ_j MLP_e(R(r_ij)) ⊙ (h_j ⊗ Y(r̂_ij)); same weights as `exact`."""

    def __init__(self, exact: EdgeTensorProduct, cpu_kernel: bool = True):
        super().__init__(exact)
        self.cpu_kernel = bool(cpu_kernel)

    def pooled(self, h: torch.Tensor, edges: EdgeInputs) -> torch.Tensor:
        senders, receivers = edges.edge_index
        distinct, inverse = torch.unique(edges.edge_length, return_inverse=True)
        first = inverse.new_empty(len(distinct)).scatter_(0, inverse, torch.arange(len(inverse), device=h.device))
        weights = _grouped_weights(self.mlp, edges.edge_radial[first], self.grouped.weight_columns)
        nodes = self.grouped.split_nodes(h)
        if self.uses_cpu_kernel(h, edges.edge_sh):
            parts = fused.EdgeTPFunction.apply(self.grouped, senders, receivers, edges.edge_sh, inverse, weights,
                                               *nodes)
            return self.grouped.assemble(list(parts))
        pooled = self.grouped.empty_pooled(h.shape[0], weights)
        self.grouped.accumulate(pooled, nodes, senders, receivers, edges.edge_sh, weights[inverse])
        return self.grouped.assemble(pooled)

    def uses_cpu_kernel(self, h: torch.Tensor, edge_sh: torch.Tensor) -> bool:
        return (self.cpu_kernel and h.device.type == "cpu" and not edge_sh.requires_grad
                and fused.edge_kernel() is not None)


class GroupedVelocityTensorProduct(GroupedProduct):
    """Paper eq. 3: m_i ⊗ Y(v̂_i) with weights MLP_v(R(v_i, Z_i)); same weights as `exact`."""

    def forward(self, m, velocity_sh, velocity_embedding, edges: EdgeInputs | None = None):
        weights = _grouped_weights(self.mlp, velocity_embedding, self.grouped.weight_columns)
        return self.grouped.rows(m, velocity_sh, weights)


class SplitLinear(nn.Module):
    """e3nn's `o3.Linear` (no biases, internal weights) with the same parameter and state dict, whose inputs
    and weights are taken apart with `split`."""

    def __init__(self, exact: nn.Module):
        super().__init__()
        if exact.bias.numel():
            raise ValueError("SplitLinear: biases are not used by TrajCast's linears")
        self.weight = exact.weight
        self.register_buffer("bias", exact.bias)
        self.register_buffer("output_mask", exact.output_mask)
        self.irreps_in, self.irreps_out = exact.irreps_in, exact.irreps_out
        self.instructions = [i for i in exact.instructions if 0 not in i.path_shape]
        self.exact = [exact]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = x.split([mul_ir.dim for mul_ir in self.irreps_in], dim=-1)
        weights = self.weight.split([i.path_shape[0] * i.path_shape[1] for i in self.instructions])
        out = [None] * len(self.irreps_out)
        for ins, w in zip(self.instructions, weights):
            mul, ir = self.irreps_in[ins.i_in]
            term = torch.einsum("uw,zui->zwi", w.view(ins.path_shape), pieces[ins.i_in].reshape(-1, mul, ir.dim))
            term = ins.path_weight * term.reshape(x.shape[0], -1)
            out[ins.i_out] = term if out[ins.i_out] is None else out[ins.i_out] + term
        return torch.cat([o if o is not None else x.new_zeros(x.shape[0], mul_ir.dim)
                          for o, mul_ir in zip(out, self.irreps_out) if mul_ir.dim], dim=-1)


def use_fast_training(model, cpu_kernel: bool = True):
    """Switch `model` (a TrajCast) to the fast training path in place; returns it."""
    model.use_exact()
    reference = next(model.parameters())
    for layer in model.layers:
        layer.edge_tp = GroupedEdgeTensorProduct(layer.edge_tp, cpu_kernel).to(dtype=reference.dtype,
                                                                             device=reference.device)
        layer.velocity_tp = GroupedVelocityTensorProduct(layer.velocity_tp).to(dtype=reference.dtype,
                                                                             device=reference.device)
        layer.linear_message = SplitLinear(layer.linear_message)
        layer.linear_update = SplitLinear(layer.linear_update)
        layer.residual.linears = nn.ModuleList(SplitLinear(linear) for linear in layer.residual.linears)
    return model


def uses_fast_training(model) -> bool:
    return any(isinstance(layer.edge_tp, GroupedEdgeTensorProduct) for layer in model.layers)


def _grouped_weights(mlp: nn.Sequential, features: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """mlp(features)[:, columns] with the column pick applied to the last layer's rows instead of its output."""
    hidden = features
    for module in list(mlp)[:-1]:
        hidden = module(hidden)
    return nn.functional.linear(hidden, mlp[-1].weight[columns])
