"""The MLP that turns a radial (or speed) embedding into tensor-product path weights."""

from torch import nn

__all__ = ["RadialMLP"]


class RadialMLP(nn.Sequential):
    """Bias-free SiLU MLP (paper: three hidden layers of 64): zero input gives zero weights, so edges fade
    out smoothly at the cutoff where the embedding vanishes."""

    def __init__(self, dim_in: int, hidden: list[int], dim_out: int):
        widths = [dim_in, *hidden]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.SiLU()]
        layers.append(nn.Linear(widths[-1], dim_out, bias=False))
        super().__init__(*layers)
