"""The loss of paper eq. (8) and the error metrics of SI Table S1, as sums that all-reduce across ranks.

Loss: L = (λ_d Σ (Δr̂ − Δr)²/σ_d² + λ_v Σ (v̂ − v)²/σ_v²) / (3 N_atoms), summed over every atom and component
of the *global* batch, with σ the target RMS of the training split (targets "normalised by their RMS").
Metrics per species: MAE of displacement (Å) and velocity (Å/fs), relative to the training RMS (`rel_rms`)
and, as in Table S1, to the mean absolute target of the evaluated set (`rel_mean`).
"""

from __future__ import annotations

import torch

__all__ = ["squared_errors", "Metrics"]


def squared_errors(pred_d, pred_v, target_d, target_v, rms_d, rms_v):
    """(Σ ((Δr̂ − Δr)/σ_d)², Σ ((v̂ − v)/σ_v)²) over all atoms and components of a batch; σ global numbers
    or each atom's (N, 1) scales (the model's `readout.scales`)."""
    return (((pred_d - target_d) / rms_d) ** 2).sum(), (((pred_v - target_v) / rms_v) ** 2).sum()


class Metrics:
    """Running sums (float64, one flat tensor so one all-reduce) of squared and absolute errors per species."""

    def __init__(self, species: list[int], weights: tuple[float, float], rms: tuple[float, float], device="cpu"):
        self.species, self.weights, self.rms = list(species), weights, rms
        s = len(self.species)
        self.sums = torch.zeros(2 + 5 * s, dtype=torch.float64, device=device)
        self._s = s

    def add(self, pred_d, pred_v, target_d, target_v, species_index, scales) -> None:
        """`scales`: each atom's (σ_d, σ_v) for the loss, as the training step uses them."""
        with torch.no_grad():
            s = self._s
            sse_d, sse_v = squared_errors(pred_d, pred_v, target_d, target_v, *scales)
            per_atom = torch.stack([(pred_d - target_d).abs().sum(-1), (pred_v - target_v).abs().sum(-1),
                                    target_d.abs().sum(-1), target_v.abs().sum(-1),
                                    torch.ones_like(target_d[:, 0])], dim=1).to(torch.float64)
            grouped = torch.zeros(s, 5, dtype=torch.float64, device=self.sums.device)
            grouped.index_add_(0, species_index, per_atom)
            self.sums[0] += sse_d.to(torch.float64)
            self.sums[1] += sse_v.to(torch.float64)
            self.sums[2:] += grouped.T.reshape(-1)

    def reduce(self, dist) -> "Metrics":
        """All-reduce the sums over ranks (collective: every rank must call it)."""
        dist.sum(self.sums)
        return self

    def state(self) -> torch.Tensor:
        return self.sums.detach().cpu().clone()

    def load(self, sums: torch.Tensor) -> None:
        self.sums.copy_(sums.to(self.sums.device))

    def summary(self) -> dict:
        """Loss and MAEs (total and per element symbol) from the sums; NaN where nothing was counted."""
        from ase.data import chemical_symbols

        s, sums = self._s, self.sums.cpu()
        err_d, err_v, abs_d, abs_v, atoms = sums[2:].reshape(5, s)
        n_atoms = float(atoms.sum())
        nan = float("nan")
        out = {"loss": (self.weights[0] * float(sums[0]) + self.weights[1] * float(sums[1])) / (3 * n_atoms)
               if n_atoms else nan, "n_atoms": int(n_atoms)}
        groups = {"": slice(None)} | {f"_{chemical_symbols[z]}": slice(k, k + 1) for k, z in enumerate(self.species)}
        for suffix, sel in groups.items():
            n = 3 * float(atoms[sel].sum())
            for name, err, absolute, rms in (("d", err_d, abs_d, self.rms[0]), ("v", err_v, abs_v, self.rms[1])):
                mae = float(err[sel].sum()) / n if n else nan
                mean_abs = float(absolute[sel].sum()) / n if n else nan
                out[f"mae_{name}{suffix}"] = mae
                out[f"rel_rms_{name}{suffix}"] = mae / rms
                out[f"rel_mean_{name}{suffix}"] = mae / mean_abs if n and mean_abs else nan
        return out
