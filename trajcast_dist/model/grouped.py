"""The channel-wise ("uvu") tensor product as three large contractions, one per input degree l (issue #8).

For all input irreps of one l the Clebsch–Gordan coefficients of every path are stacked into one block
C_l[s, i, (path, k)], so per row A = Y · C_l is a small (2l+1) × Σ(2l_out+1) matrix and the message of all
paths and channels is one batched contraction x_u,i A_i,(path,k), then one weight multiply per l_out and
one scatter-add. The blocks are read off the backend's own tensor product with unit inputs, so path
normalisation and sign conventions are the backend's by construction and both backends' weight layout applies.
"""

import torch
from torch import nn

from trajcast_dist.model.backends import channelwise_paths

__all__ = ["GroupedChannelwiseTP"]


class GroupedChannelwiseTP(nn.Module):
    """Same map as `tp` (x, y, per-row weights in the shared layout) → output in the shared layout."""

    def __init__(self, tp: nn.Module):
        super().__init__()
        self.irreps_in, self.irreps_sh, self.irreps_out = tp.irreps_in, tp.irreps_sh, tp.irreps_out
        self.weight_numel = tp.weight_numel
        lmax = max(ir.l for _, ir in self.irreps_out)
        irreps_out, instructions = channelwise_paths(self.irreps_in, self.irreps_sh, lmax)
        assert irreps_out == self.irreps_out, "backend tensor product does not use the shared path list"
        self.groups = _plan_groups(self.irreps_in, self.irreps_sh, instructions, irreps_out)
        flat_offsets = torch.tensor([0] + [g.flat_dim for g in self.groups]).cumsum(0)
        out_index = torch.empty(self.irreps_out.dim, dtype=torch.long)
        with torch.no_grad():
            for g, offset in zip(self.groups, flat_offsets):
                out_index[g.out_columns] = offset + torch.arange(g.flat_dim)
                g.cg = _read_cg_block(tp, g, self.irreps_in, self.irreps_sh)
        for n, g in enumerate(self.groups):
            self.register_buffer(f"x_index_{n}", g.x_index, persistent=False)
            self.register_buffer(f"cg_{n}", g.cg, persistent=False)
            self.register_buffer(f"path_columns_{n}", g.path_columns, persistent=False)
        self.register_buffer("out_index", out_index, persistent=False)
        # Weights are read in "grouped" order: per degree, (sorted path, channel); see `weight_columns`.
        self.register_buffer("weight_columns", torch.cat([g.w_index for g in self.groups]), persistent=False)
        self.weight_offsets = torch.tensor([0] + [g.channels * g.num_paths for g in self.groups]).cumsum(0).tolist()

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Row-wise product with weights in the shared layout."""
        return self.rows(x, y, weights[:, self.weight_columns])

    def rows(self, x: torch.Tensor, y: torch.Tensor, grouped_weights: torch.Tensor) -> torch.Tensor:
        """Row-wise product (the velocity TP: one row per atom), weights already in grouped order."""
        parts = [self._messages(n, h, y, grouped_weights) for n, h in enumerate(self.split_nodes(x))]
        return self.assemble(parts)

    def split_nodes(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Node features per input degree, (N, 2l+1, channels) each (channels innermost, so every later
        broadcast runs over contiguous rows): gathered once per layer, not per edge."""
        return [h[:, self._buffer("x_index", n)].view(h.shape[0], g.l_dim, g.channels)
                for n, g in enumerate(self.groups)]

    def empty_pooled(self, num_nodes: int, like: torch.Tensor) -> list[torch.Tensor]:
        return [like.new_zeros(num_nodes, g.out_dim, g.channels) for g in self.groups]

    def accumulate(self, pooled, h_split, senders, receivers, y, weights) -> None:
        """pooled[receiver] += Σ over these edges of w ⊙ (h[sender] ⊗ Y); weights in grouped order."""
        for n, (out, h) in enumerate(zip(pooled, h_split)):
            out.index_add_(0, receivers, self._messages(n, h[senders], y, weights))

    def assemble(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per-degree results → the shared output layout (a column permutation)."""
        flat = torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1)
        return flat[:, self.out_index]

    def cg_blocks(self) -> list[torch.Tensor]:
        """C_l per group, (num_sh, Σ(2l_out+1) · (2l+1))."""
        return [self._buffer("cg", n) for n in range(len(self.groups))]

    def path_columns(self) -> list[torch.Tensor]:
        """Per group, the first output column of every sorted path, then the end (a cumulative sum)."""
        return [self._buffer("path_columns", n) for n in range(len(self.groups))]

    def _messages(self, n: int, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        g = self.groups[n]
        rows = x.shape[0]
        a = (y @ self._buffer("cg", n)).view(rows, g.out_dim, g.l_dim)
        msg = torch.bmm(a, x)  # (rows, Σ(2l_out+1), channels)
        w = weights[:, self.weight_offsets[n]:self.weight_offsets[n + 1]].view(rows, g.num_paths, g.channels)
        for first_col, last_col, first_path, last_path, k in g.by_l_out:
            msg[:, first_col:last_col].view(rows, last_path - first_path, k, g.channels).mul_(
                w[:, first_path:last_path].unsqueeze(2))
        return msg

    def _buffer(self, name: str, n: int) -> torch.Tensor:
        return getattr(self, f"{name}_{n}")


class _Group:
    """All input irreps of one degree l, their channels stacked; paths sorted by l_out."""

    def __init__(self, l_in: int):
        self.l_in, self.l_dim = l_in, 2 * l_in + 1
        self.members = []  # (i_in, mul, [path index per sorted path])


def _plan_groups(irreps_in, irreps_sh, instructions, irreps_out):
    paths_of = {}
    for p, (i_in, i_sh, i_out, _, _) in enumerate(instructions):
        paths_of.setdefault(i_in, []).append((irreps_out[i_out].ir.l, i_sh, p))
    w_offsets = [0]
    for i_in, _, _, _, _ in instructions:
        w_offsets.append(w_offsets[-1] + irreps_in[i_in].mul)
    out_slices = irreps_out.slices()
    in_slices = irreps_in.slices()
    groups = {}
    for i_in, (mul, ir) in enumerate(irreps_in):
        paths = sorted(paths_of.get(i_in, []))
        group = groups.setdefault(ir.l, _Group(ir.l))
        signature = [(l_out, i_sh) for l_out, i_sh, _ in paths]
        if group.members and signature != group.signature:
            raise ValueError(f"irreps of degree {ir.l} have different path lists; not supported")
        group.signature = signature
        group.members.append((i_in, mul, [p for _, _, p in paths]))
    planned = []
    for group in (groups[l] for l in sorted(groups)):
        if not group.signature:
            continue
        group.channels = sum(mul for _, mul, _ in group.members)
        group.num_paths = len(group.signature)
        ks = [2 * l_out + 1 for l_out, _ in group.signature]
        group.out_dim = sum(ks)
        group.flat_dim = group.channels * group.out_dim
        group.path_columns = torch.tensor([0] + ks).cumsum(0)
        col_starts = group.path_columns.tolist()
        group.by_l_out = []  # (first column, last column, first path, last path, 2 l_out + 1)
        for l_out in sorted({l for l, _ in group.signature}):
            first = next(q for q, (l, _) in enumerate(group.signature) if l == l_out)
            last = first + sum(1 for l, _ in group.signature if l == l_out)
            group.by_l_out.append((col_starts[first], col_starts[last], first, last, 2 * l_out + 1))
        x_index, w_index, out_columns = [], [], []
        for i_in, mul, path_ids in group.members:
            start = in_slices[i_in].start
            x_index.append(torch.arange(start, start + mul * group.l_dim))
            w_index.append(torch.stack([w_offsets[p] + torch.arange(mul) for p in path_ids], dim=1))
            # Output column of (u, sorted path q, k) in the shared layout: path block, then [u][k].
            cols = torch.empty(mul, group.out_dim, dtype=torch.long)
            for q, p in enumerate(path_ids):
                k = ks[q]
                block = out_slices[p].start + torch.arange(mul * k).view(mul, k)
                cols[:, col_starts[q]:col_starts[q] + k] = block
            out_columns.append(cols)
        # Everything is stored channel-innermost: (component, channel), (path, channel), (column, channel).
        group.x_index = torch.cat([i.view(-1, group.l_dim) for i in x_index]).t().reshape(-1)
        group.w_index = torch.cat(w_index).t().reshape(-1)
        group.out_columns = torch.cat(out_columns).t().reshape(-1)
        planned.append(group)
    return planned


def _read_cg_block(tp, group, irreps_in, irreps_sh) -> torch.Tensor:
    """C[s, i, (path, k)] from the backend product with x = unit component i in every channel of the group,
    y = unit vector s and all weights 1; every channel must give the same block (checked)."""
    tp64 = _as_float64(tp)
    # On the product's own device (cuEquivariance's CUDA kernels take CUDA tensors); the block comes back to CPU.
    as_float = dict(dtype=torch.float64, device=next(tp64.buffers(), torch.empty(0)).device)
    n_sh = irreps_sh.dim
    x = torch.zeros(group.l_dim, n_sh, irreps_in.dim, **as_float)
    for c in range(group.l_dim):
        x[c, :, group.x_index.view(group.l_dim, -1)[c]] = 1.0
    y = torch.eye(n_sh, **as_float).expand(group.l_dim, n_sh, n_sh)
    out = tp64(x.reshape(-1, irreps_in.dim), y.reshape(-1, n_sh), torch.ones(x.shape[0] * n_sh, tp.weight_numel,
                                                                                **as_float)).cpu()
    per_channel = out[:, group.out_columns].view(group.l_dim, n_sh, group.out_dim, group.channels)
    block = per_channel[..., 0]  # (i, s, (path, k))
    if not torch.allclose(per_channel, block.unsqueeze(-1).expand_as(per_channel), rtol=0, atol=1e-12):
        raise ValueError("tensor product is not channel-wise with shared coefficients")
    return block.permute(1, 2, 0).reshape(n_sh, group.out_dim * group.l_dim).contiguous()


def _as_float64(tp):
    import copy

    if all(b.dtype == torch.float64 for b in list(tp.buffers()) + list(tp.parameters())):
        return tp
    return copy.deepcopy(tp).to(torch.float64)
