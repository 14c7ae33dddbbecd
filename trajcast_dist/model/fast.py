"""Fast inference mode (issue #8): tabulated path weights + grouped tensor products, same weights.

On CPU the edge tensor product runs in one fused C++ loop (cpu_kernel.py) when it can be built; the grouped
torch implementation below is the fallback and the reference it is tested against.

`use_fast_inference(model)` swaps each layer's edge and velocity tensor products for the versions below, after
construction (as the fast training path does, `fast_train.GroupedProduct`). They keep the exact modules' `tp` and
`mlp` as submodules (so the state dict, its keys and a checkpoint are unchanged) and add only non-persistent tables
and index buffers, built once from the current weights in float64. The exact path stays the default and the
reference; the fast one is for inference only (the tables do not follow the weights while training).
"""

import torch

from trajcast_dist.model import cpu_kernel as fused
from trajcast_dist.model.fast_train import GroupedProduct, SplitLinear
from trajcast_dist.model.interaction import EdgeInputs, EdgeTensorProduct, VelocityTensorProduct
from trajcast_dist.model.tabulate import RADIAL_POINTS, SPEED_POINTS, radial_weight_table, speed_weight_table

__all__ = ["TabulatedEdgeTensorProduct", "TabulatedVelocityTensorProduct", "use_fast_inference", "use_exact",
           "CHUNK_EDGES"]

# Edges per block: each block's messages (CHUNK_EDGES × 6528 values at full width) stay near the CPU caches;
# a larger block gains nothing on CPU and only raises peak memory.
CHUNK_EDGES = 512


class TabulatedEdgeTensorProduct(GroupedProduct):
    """Paper eq. 2 with w(r) interpolated from a table and the messages pooled block by block."""

    def __init__(self, exact: EdgeTensorProduct, radial, cutoff_A: float, radial_points: int = RADIAL_POINTS,
                 chunk_edges: int = CHUNK_EDGES, cpu_kernel: bool = True):
        super().__init__(exact)
        self.table = radial_weight_table(radial, exact.mlp, cutoff_A, radial_points,
                                         columns=self.grouped.weight_columns)
        self.chunk_edges = int(chunk_edges)
        self.cpu_kernel = bool(cpu_kernel)

    def pooled(self, h, edges: EdgeInputs) -> torch.Tensor:
        senders, receivers = edges.edge_index
        if self.uses_cpu_kernel(h):
            return fused.pooled_edge_tp(self.grouped, self.table, h, senders, receivers, edges.edge_sh,
                                        edges.edge_length)
        pooled = self.grouped.empty_pooled(h.shape[0], h)
        h_split = self.grouped.split_nodes(h)
        for start in range(0, senders.shape[0], self.chunk_edges):
            block = slice(start, start + self.chunk_edges)
            weights = self.table(edges.edge_length[block])
            self.grouped.accumulate(pooled, h_split, senders[block], receivers[block], edges.edge_sh[block],
                                    weights)
        return self.grouped.assemble(pooled)

    def uses_cpu_kernel(self, h: torch.Tensor) -> bool:
        """The fused kernel has no backward: only for CPU tensors outside autograd."""
        return (self.cpu_kernel and h.device.type == "cpu" and not (torch.is_grad_enabled() and h.requires_grad)
                and fused.edge_kernel() is not None)


class TabulatedVelocityTensorProduct(GroupedProduct):
    """Paper eq. 3 with w(|v|, Z) interpolated from one table per species."""

    def __init__(self, exact: VelocityTensorProduct, velocity_embedding, num_species: int,
                 speed_points: int = SPEED_POINTS):
        super().__init__(exact)
        self.table = speed_weight_table(velocity_embedding, exact.mlp, num_species, speed_points,
                                        columns=self.grouped.weight_columns)

    def forward(self, m, velocity_sh, velocity_embedding, edges: EdgeInputs | None = None):
        return self.grouped.rows(m, velocity_sh, self.table(edges.speed, edges.species))


def use_fast_inference(model, radial_points: int = RADIAL_POINTS, speed_points: int = SPEED_POINTS,
                       chunk_edges: int = CHUNK_EDGES, cpu_kernel: bool = True):
    """Switch `model` (a TrajCast) to the fast inference mode in place; returns it, in eval mode.
    `cpu_kernel=False` keeps the edge tensor product on the torch implementation."""
    use_exact(model)
    reference = next(model.parameters())
    for layer in model.layers:
        layer.edge_tp = TabulatedEdgeTensorProduct(layer.edge_tp, model.radial, model.cutoff_A, radial_points,
                                                   chunk_edges, cpu_kernel).to(dtype=reference.dtype,
                                                                               device=reference.device)
        layer.velocity_tp = TabulatedVelocityTensorProduct(layer.velocity_tp, model.velocity_embedding,
                                                           len(model.species), speed_points).to(
            dtype=reference.dtype, device=reference.device)
    return model.eval()


def use_exact(model):
    """Back to the exact (reference) path from either fast path; returns `model`."""
    for layer in model.layers:
        if isinstance(layer.edge_tp, GroupedProduct):
            layer.edge_tp = layer.edge_tp.exact[0]
        if isinstance(layer.velocity_tp, GroupedProduct):
            layer.velocity_tp = layer.velocity_tp.exact[0]
        if isinstance(layer.linear_message, SplitLinear):
            layer.linear_message, layer.linear_update = layer.linear_message.exact[0], layer.linear_update.exact[0]
            layer.residual.linears = torch.nn.ModuleList(linear.exact[0] for linear in layer.residual.linears)
    return model
