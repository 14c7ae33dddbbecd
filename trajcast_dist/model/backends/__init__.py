"""Tensor-product backends behind one small interface, chosen once at model build.

A backend provides `ChannelwiseTP(irreps_in, irreps_sh, lmax)` — the "uvu" tensor product h ⊗ Y with
per-sample path weights (paper eqs. 2 and 3) — and `Linear(irreps_in, irreps_out)`. Both backends use the
path list from `channelwise_paths` and the same weight layout, so one checkpoint loads in either.
"""

import importlib

from e3nn import o3

__all__ = ["channelwise_paths", "get_backend", "resolve_backend", "BACKENDS"]

BACKENDS = ("e3nn", "cueq")


def channelwise_paths(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax: int):
    """All CG paths (i_in, i_sh) → ir_out with l_out ≤ lmax; one output block of mul_in channels each.

    Returns (irreps_out, instructions) with instructions (i_in, i_sh, i_out, "uvu", True) in a fixed order:
    this order is the weight layout.
    """
    irreps_out, instructions = [], []
    for i_in, (mul, ir_in) in enumerate(irreps_in):
        for i_sh, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out.l <= lmax:
                    instructions.append((i_in, i_sh, len(irreps_out), "uvu", True))
                    irreps_out.append((mul, ir_out))
    return o3.Irreps(irreps_out), instructions


def get_backend(name: str):
    """The module implementing `ChannelwiseTP` and `Linear` for backend `name`."""
    if name in BACKENDS:
        return importlib.import_module(f"trajcast_dist.model.backends.{name}_backend")
    raise ValueError(f"unknown backend {name!r}; choose from {BACKENDS}")


def resolve_backend(name: str, device="cpu") -> str:
    """'auto' → cueq on a CUDA device when cuequivariance-torch imports, else e3nn; other names unchanged."""
    if name != "auto":
        return name
    if str(device).startswith("cuda"):
        try:
            import cuequivariance_torch  # noqa: F401
            return "cueq"
        except ImportError:
            return "e3nn"
    return "e3nn"
