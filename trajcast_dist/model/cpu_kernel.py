"""The fused CPU edge kernels of the fast paths: `csrc/edge_tp_cpu.cpp`, built once per machine.

`pooled_edge_tp` is the inference kernel (issue #8: tabulated weights); `EdgeTPFunction` the training one
(issue #14: per-edge weights from the radial MLP, with a hand-written backward for them and the node features).

The torch implementation of the tabulated edge tensor product (fast.py, grouped.py) writes and re-reads every
per-edge message and weight row: memory-bound, 3–5× slower than one C++ loop that interpolates the weights,
contracts and pools in registers. The kernel is compiled on first use with torch's extension builder (a C++
compiler and ninja; ≈ 30 s, cached under $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions). The build name
carries a digest of the source and of this CPU's instruction-set flags, so a cache shared between different
machines (an NFS home on a cluster) never loads a binary built for another CPU. If the build fails the fast path
keeps working on the torch implementation and says so once. TRAJCAST_DIST_CPU_KERNEL=0 turns the kernel off.
"""

import hashlib
import os
import platform
import warnings
from pathlib import Path

import torch

__all__ = ["edge_kernel", "kernel_status", "needs_build", "pooled_edge_tp", "EdgeTPFunction"]

SOURCE = Path(__file__).with_name("csrc") / "edge_tp_cpu.cpp"
_OFF = "off (TRAJCAST_DIST_CPU_KERNEL=0)"
_loaded: dict = {}


def edge_kernel():
    """The compiled extension, or None when it is turned off or cannot be built (`kernel_status()` says why)."""
    if "module" not in _loaded:
        _loaded["module"], _loaded["status"] = _build()
        if _loaded["module"] is None and _loaded["status"] != _OFF:
            warnings.warn(f"trajcast-dist: the fused CPU edge kernel is unavailable ({_loaded['status']}); the "
                          "--fast path runs on its torch implementation, 3–5× slower", RuntimeWarning, stacklevel=2)
    return _loaded["module"]


def kernel_status() -> str:
    edge_kernel()
    return _loaded["status"]


def pooled_edge_tp(grouped, table, h: torch.Tensor, senders, receivers, edge_sh, edge_length) -> torch.Tensor:
    """Σ_j w(r_ij) ⊙ (h_j ⊗ Y(r̂_ij)) for every node i, the weights interpolated from `table` (a HermiteTable
    storing them in `grouped`'s order): the same result as TabulatedEdgeTensorProduct's torch path."""
    pooled = grouped.empty_pooled(h.shape[0], h)
    edge_kernel().edge_tp_pooled(
        [x.contiguous() for x in grouped.split_nodes(h)], grouped.cg_blocks(), grouped.path_columns(),
        grouped.weight_offsets[:-1], table.rows, table.lo, table.step, table.num_nodes, senders.contiguous(),
        receivers.contiguous(), edge_sh.contiguous(), edge_length.contiguous(), pooled)
    return grouped.assemble(pooled)


class EdgeTPFunction(torch.autograd.Function):
    """pooled[g] = Σ_{e → i} w[row_e] ⊙ (nodes[g][sender e] ⊗ Y(r̂_e)) per degree group g of `grouped`, weights
    (U, W) in grouped order, `weight_index` (E,) the row of each edge (several edges may share one); differentiable
    in the weights and the node features (not in Y: training needs no forces)."""

    @staticmethod
    def forward(ctx, grouped, senders, receivers, edge_sh, weight_index, weights, *nodes):
        kernel = edge_kernel()
        pooled = grouped.empty_pooled(nodes[0].shape[0], weights)
        nodes = [x.contiguous() for x in nodes]
        args = (grouped.cg_blocks(), grouped.path_columns(), grouped.weight_offsets[:-1])
        tensors = [t.contiguous() for t in (weights, weight_index, senders, receivers, edge_sh)]
        kernel.edge_tp_forward(nodes, *args, *tensors, pooled)
        ctx.save_for_backward(*tensors, *nodes)
        ctx.args = args
        return tuple(pooled)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_pooled):
        weights, weight_index, senders, receivers, edge_sh, *nodes = ctx.saved_tensors
        grad_weights = torch.zeros_like(weights)
        grad_nodes = [torch.zeros_like(x) for x in nodes]
        grad_pooled = [g.contiguous() for g in grad_pooled]
        edge_kernel().edge_tp_backward(nodes, *ctx.args, weights, weight_index, senders, receivers, edge_sh,
                                       grad_pooled, grad_weights, grad_nodes)
        return (None, None, None, None, None, grad_weights, *grad_nodes)


def _build():
    if _turned_off():
        return None, _OFF
    try:
        from torch.utils.cpp_extension import load

        flags = _flags()
        _remove_stale_lock(_name(flags))
        module = load(name=_name(flags), sources=[str(SOURCE)], extra_cflags=flags, verbose=False)
        return module, f"built ({SOURCE.name}, {' '.join(flags)})"
    except Exception as error:  # no compiler, no ninja, a read-only cache: fall back, never fail a forecast
        reason = str(error).strip().splitlines()
        return None, f"{type(error).__name__}: {reason[-1] if reason else ''}"


def needs_build() -> bool:
    """Whether the next `edge_kernel()` compiles (≈ 30 s) rather than loads: callers can say so first."""
    if "module" in _loaded or _turned_off():
        return False
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return not any(Path(_get_build_directory(_name(_flags()), False)).glob("*.so"))
    except Exception:  # a private torch helper: if it moves, only the notice is lost
        return False


def _remove_stale_lock(name: str, older_than_s: float = 600.0) -> None:
    """torch's builder waits for its `lock` file to go away; a process killed while compiling leaves it behind
    and every later build would wait forever. A build takes ≈ 30 s: a lock older than 10 minutes is stale."""
    import time

    try:
        from torch.utils.cpp_extension import _get_build_directory

        lock = Path(_get_build_directory(name, False)) / "lock"
        if lock.exists() and time.time() - lock.stat().st_mtime > older_than_s:
            warnings.warn(f"trajcast-dist: removing the stale build lock {lock} (left by a killed build)",
                          RuntimeWarning, stacklevel=3)
            lock.unlink(missing_ok=True)
    except Exception:  # a private torch helper: if it moves, only this repair is lost
        pass


def _turned_off() -> bool:
    return os.environ.get("TRAJCAST_DIST_CPU_KERNEL", "1") == "0"


def _flags() -> list[str]:
    return ["-O3"] + (["-march=native"] if platform.machine() in ("x86_64", "AMD64") else [])


def _name(flags: list[str]) -> str:
    digest = hashlib.sha1(SOURCE.read_bytes() + _cpu_signature().encode() + " ".join(flags).encode()).hexdigest()
    return f"trajcast_edge_tp_{digest[:12]}"


def _cpu_signature() -> str:
    """The instruction-set flags of this CPU (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine() + platform.processor()
