"""cuEquivariance backend: the same layers computed by cuequivariance-torch kernels.

Each module subclasses its e3nn counterpart, so parameters, buffers, initialisation and therefore the state
dict are the e3nn ones (one weight layout; a checkpoint loads in either backend, no conversion). Only
`forward` differs: it calls the cuEquivariance kernel. The channel-wise kernel orders its paths by output
irrep; the permutation of weights and outputs that maps it onto the shared layout is read off once at build
with unit weights (and checked to need no rescaling). On CPU the kernels run their `naive` (pure torch) method,
which is what CI exercises; on a GPU the default fused methods are used.
"""

import cuequivariance as cue
import cuequivariance_torch as cuet
import torch
from e3nn import o3

from trajcast_dist.model.backends import e3nn_backend

__all__ = ["ChannelwiseTP", "Linear"]


class ChannelwiseTP(e3nn_backend.ChannelwiseTP):
    """"uvu" h ⊗ Y with per-sample path weights in the shared layout (see `channelwise_paths`)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax: int):
        super().__init__(irreps_in, irreps_sh, lmax)
        filter_out = sorted({_cue_irrep(ir) for _, ir in self.irreps_out})
        self.kernel = _without_state(cuet.ChannelWiseTensorProduct(
            _cue_irreps(self.irreps_in), _cue_irreps(self.irreps_sh), filter_out, layout=cue.mul_ir,
            shared_weights=False, internal_weights=False, dtype=torch.get_default_dtype(), method=_method()))
        weight_index, out_index = _channelwise_permutation(self.irreps_in, self.irreps_sh, lmax, filter_out)
        self.register_buffer("kernel_weight_index", weight_index, persistent=False)
        self.register_buffer("kernel_out_index", out_index, persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = self.kernel(x, y, weights[:, self.kernel_weight_index])
        return out[:, self.kernel_out_index]


class Linear(e3nn_backend.Linear):
    """Equivariant linear map; cuEquivariance's linear uses e3nn's weight layout and normalisation as is."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__(irreps_in, irreps_out)
        self.kernel = _without_state(cuet.Linear(
            _cue_irreps(self.irreps_in), _cue_irreps(self.irreps_out), layout=cue.mul_ir, shared_weights=True,
            internal_weights=False, dtype=torch.get_default_dtype(), method=_method()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight_numel == 0:
            return x.new_zeros(x.shape[0], self.irreps_out.dim)
        return self.kernel(x, self.weight.unsqueeze(0))


def _method():
    return None if torch.cuda.is_available() else "naive"


def _cue_irrep(ir: o3.Irrep):
    return cue.O3(ir.l, ir.p)


def _cue_irreps(irreps: o3.Irreps):
    return cue.Irreps("O3", str(irreps))


def _without_state(module: torch.nn.Module) -> torch.nn.Module:
    """The kernel's constant buffers follow .to() but stay out of the state dict (the e3nn parent's are there)."""
    for sub in module.modules():
        sub._non_persistent_buffers_set.update(name for name, _ in sub.named_buffers(recurse=False))
    return module


def _channelwise_permutation(irreps_in, irreps_sh, lmax, filter_out):
    """(weight index, output index): kernel weights = shared[:, weight index]; shared out = kernel[:, out index].

    Paths are matched with one channel per irrep: each kernel path's response to a unit weight must equal one
    shared-layout path's response (same values, scale 1); multiplicities then expand block by block.
    """
    from trajcast_dist.model.backends import channelwise_paths

    single = o3.Irreps([(1, ir) for _, ir in irreps_in])
    reference = e3nn_backend.ChannelwiseTP(single, irreps_sh, lmax).to(torch.float64)
    kernel = cuet.ChannelWiseTensorProduct(_cue_irreps(single), _cue_irreps(irreps_sh), filter_out, layout=cue.mul_ir,
                                           shared_weights=False, internal_weights=False, dtype=torch.float64,
                                           method="naive")
    n_paths = reference.weight_numel
    assert kernel.weight_numel == n_paths, "cuEquivariance and e3nn disagree on the channel-wise paths"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, single.dim, dtype=torch.float64, generator=generator)
    y = torch.randn(3, irreps_sh.dim, dtype=torch.float64, generator=generator)
    unit = torch.eye(n_paths, dtype=torch.float64)
    with torch.no_grad():
        ref = torch.stack([reference(x, y, unit[p].expand(3, -1)) for p in range(n_paths)])
        ker = torch.stack([kernel(x, y, unit[p].expand(3, -1)) for p in range(n_paths)])
    ref_blocks = reference.irreps_out.slices()
    ker_irreps = o3.Irreps(str(kernel.irreps_out))
    ker_blocks = ker_irreps.slices()
    path_of_kernel = []
    for c in range(n_paths):
        block = ker_blocks[c]
        match = [p for p in range(n_paths) if ref_blocks[p].stop - ref_blocks[p].start == block.stop - block.start
                 and torch.allclose(ker[c][:, block], ref[p][:, ref_blocks[p]], rtol=0, atol=1e-12)
                 and ref[p][:, ref_blocks[p]].abs().max() > 1e-6]
        if len(match) != 1:
            raise ValueError(f"cannot match cuEquivariance path {c} to one e3nn path (found {match})")
        path_of_kernel.append(match[0])
    _, instructions = channelwise_paths(irreps_in, irreps_sh, lmax)
    muls = [irreps_in[i_in].mul for i_in, *_ in instructions]
    dims = [mul * (2 * ir.l + 1) for mul, ir in channelwise_paths(irreps_in, irreps_sh, lmax)[0]]
    w_start = torch.tensor([0] + muls).cumsum(0)
    o_start = torch.tensor([0] + dims).cumsum(0)
    weight_index = torch.cat([w_start[p] + torch.arange(muls[p]) for p in path_of_kernel])
    kernel_out = torch.cat([o_start[p] + torch.arange(dims[p]) for p in path_of_kernel])
    out_index = torch.empty_like(kernel_out)
    out_index[kernel_out] = torch.arange(kernel_out.numel())
    return weight_index, out_index
