"""Tabulated path weights for inference (issue #8): an MLP of one scalar (r, or |v| per species) is replaced by
cubic Hermite interpolation on a fine uniform grid, built once from the trained weights.

`HermiteTable` is the one mechanism; `radial_weight_table` and `speed_weight_table` are its two uses (the edge
MLP as a function of r_ij, the velocity MLP as a function of |v_i| for each species). `columns` lets a table
store the weights already in the order its tensor product reads them. Values and slopes at the nodes are exact
(forward-mode autodiff through the MLP), so the error is O(h⁴ f⁗ / 384).
"""

import copy

import torch
from torch import nn

__all__ = ["HermiteTable", "radial_weight_table", "speed_weight_table", "RADIAL_POINTS", "SPEED_POINTS"]

# Grid sizes meeting ≤ 1e-7 relative error on the weights in float64 (tests/test_speed_fast_path.py).
RADIAL_POINTS = 1024
SPEED_POINTS = 512


class HermiteTable(nn.Module):
    """T tables f_t: [lo, hi] → R^D on n uniform nodes; `forward(x, table)` interpolates f_table(x).

    Outside [lo, hi] the value at the nearest end is returned; callers pick ranges where f is constant (zero)
    beyond `hi` and no input falls below `lo`. Tables are non-persistent buffers: a checkpoint never holds
    them, they are rebuilt from the weights.
    """

    def __init__(self, values: torch.Tensor, slopes: torch.Tensor, lo: float, hi: float):
        super().__init__()
        if values.dim() == 2:
            values, slopes = values.unsqueeze(0), slopes.unsqueeze(0)
        self.num_tables, self.num_nodes, self.dim = values.shape
        self.lo, self.hi = float(lo), float(hi)
        self.step = (self.hi - self.lo) / (self.num_nodes - 1)
        # Rows of table t: n values, then n slopes × step; a lookup is one embedding_bag over 4 rows, so the
        # interpolation is a single pass that never materialises the gathered rows.
        rows = torch.cat([values, slopes * self.step], dim=1)
        self.register_buffer("rows", rows.reshape(-1, self.dim), persistent=False)
        self.register_buffer("offsets", torch.tensor([0, self.num_nodes, 1, self.num_nodes + 1]), persistent=False)

    @classmethod
    def from_function(cls, fn, lo: float, hi: float, num_nodes: int) -> "HermiteTable":
        """Tabulate fn: (n,) → (n, D) (elementwise in x), or (n,) → (T, n, D), in float64."""
        x = torch.linspace(lo, hi, num_nodes, dtype=torch.float64)
        values, slopes = torch.func.jvp(fn, (x,), (torch.ones_like(x),))
        return cls(values.detach(), slopes.detach(), lo, hi)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        t = ((x - self.lo) / self.step).clamp(0.0, self.num_nodes - 1.0)
        cell = t.floor().clamp(max=self.num_nodes - 2.0)
        s = (t - cell).to(self.rows.dtype)
        base = cell.long() if table is None else cell.long() + table * (2 * self.num_nodes)
        s2 = s * s
        s3 = s2 * s
        basis = torch.stack([1.0 - 3.0 * s2 + 2.0 * s3, s - 2.0 * s2 + s3, 3.0 * s2 - 2.0 * s3, s3 - s2], dim=-1)
        index = base.unsqueeze(-1) + self.offsets
        return nn.functional.embedding_bag(index.reshape(-1, 4), self.rows, mode="sum",
                                           per_sample_weights=basis.reshape(-1, 4)).view(*x.shape, self.dim)


def radial_weight_table(radial: nn.Module, mlp: nn.Module, cutoff_A: float, num_nodes: int = RADIAL_POINTS,
                        columns: torch.Tensor | None = None) -> HermiteTable:
    """w(r) = MLP(R(r)) on [0, r_c]; R vanishes at r_c (polynomial cutoff) and the MLP has no bias, so w = 0
    beyond. The node at r = 0 is taken at 1e-6 Å, where sin(ωr)/r is at its limit to double precision."""
    radial, mlp = _float64_copy(radial), _float64_copy(mlp)
    fn = lambda r: _pick(mlp(radial(r.clamp(min=1e-6))), columns)  # noqa: E731
    return HermiteTable.from_function(fn, 0.0, float(cutoff_A), num_nodes)


def speed_weight_table(velocity_embedding: nn.Module, mlp: nn.Module, num_species: int,
                       num_nodes: int = SPEED_POINTS, columns: torch.Tensor | None = None) -> HermiteTable:
    """w_Z(|v|) = MLP(R(|v|, Z)) for every species Z on [0, v_max + 9 σ]: beyond, every Gaussian is below
    e^-40 of its peak, so the weights are zero to double precision (clamped to the last node)."""
    embedding, mlp = _float64_copy(velocity_embedding), _float64_copy(mlp)
    hi = float(embedding.centers[-1]) + 9.0 * embedding.width

    def fn(speed):
        rows = [_pick(mlp(embedding(speed, torch.full_like(speed, z, dtype=torch.long))), columns)
                for z in range(num_species)]
        return torch.stack(rows)

    return HermiteTable.from_function(fn, 0.0, hi, num_nodes)


def _pick(weights: torch.Tensor, columns: torch.Tensor | None) -> torch.Tensor:
    """The table may store the weights in a consumer's order (columns of the shared layout)."""
    return weights if columns is None else weights[..., columns]


def _float64_copy(module: nn.Module) -> nn.Module:
    """Tables are built once at set-up on the CPU; the caller moves them to the model's device."""
    return copy.deepcopy(module).to("cpu", torch.float64).requires_grad_(False)
