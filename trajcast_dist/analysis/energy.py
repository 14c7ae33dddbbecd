"""Potential-energy distribution of frames re-evaluated with the reference force field (paper Figs. 2B, 3C).

The energy function is a parameter, `energy_fn(frames: list[ase.Atoms]) -> np.ndarray` (eV per frame), so this
module does not depend on how energies are computed; the pipeline binds it to the reference force field
(`trajcast_dist.data.lammps_md.potential_energies(frames, system)`, LAMMPS `run 0` per frame).
Histogram overlap (our definition):

    overlap = Σ_bins min(p_a, p_b) Δ  on shared bins spanning both samples, p normalised to unit area (∈ [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from trajcast_dist.errors import UserError

__all__ = ["EnergyResult", "EnergyAccumulator", "energy_distribution", "histogram_overlap", "shared_edges",
           "reference_energy_function"]

EnergyFunction = Callable[[list], np.ndarray]


@dataclass
class EnergyResult:
    """Per-frame potential energies (eV) and their histogram (density over `edges_ev`)."""
    energies_ev: np.ndarray
    mean_ev: float
    sigma_ev: float
    edges_ev: np.ndarray
    density: np.ndarray


class EnergyAccumulator:
    """Collects frames while a trajectory streams by and evaluates them in batches of `chunk`, so only one
    batch of Atoms is held at a time (the force-field call has a per-call start-up cost worth amortising).

    A UserError of `energy_fn` (a frame the force field cannot take: a water molecule the forecast broke apart)
    stops the energies, not the analysis: `failure` says which frames and why, and `result()` is None."""

    def __init__(self, energy_fn: EnergyFunction, chunk: int = 256):
        self.energy_fn = energy_fn
        self.chunk = chunk
        self.failure: str | None = None
        self._batch: list = []
        self._energies: list[np.ndarray] = []
        self._done = 0

    def add(self, atoms) -> None:
        if self.failure is None:
            self._batch.append(atoms.copy())
        if len(self._batch) == self.chunk:
            self._flush()

    def result(self) -> np.ndarray | None:
        self._flush()
        if self.failure is not None:
            return None
        return np.concatenate(self._energies) if self._energies else np.zeros(0)

    def _flush(self) -> None:
        if not self._batch:
            return
        try:
            energies = np.asarray(self.energy_fn(self._batch), dtype=float).reshape(-1)
        except UserError as err:
            self.failure = f"analysed frame {self._done}–{self._done + len(self._batch) - 1} on ({err})"
            self._batch = []
            return
        if energies.size != len(self._batch):
            raise UserError(f"energy function returned {energies.size} energies for {len(self._batch)} frames; "
                            "it must return one potential energy (eV) per frame")
        self._energies.append(energies)
        self._done += len(self._batch)
        self._batch = []


def energy_distribution(energies_ev, edges_ev) -> EnergyResult:
    e = np.asarray(energies_ev, dtype=float)
    density, edges = np.histogram(e, bins=edges_ev, density=True)
    return EnergyResult(e, float(e.mean()), float(e.std(ddof=1)) if e.size > 1 else 0.0, edges, density)


def histogram_overlap(a, b, bins: int = 60) -> tuple[float, np.ndarray]:
    """Overlap of two samples' normalised histograms on shared edges (module docstring) and those edges."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    edges = shared_edges(a, b, bins)
    pa, _ = np.histogram(a, bins=edges, density=True)
    pb, _ = np.histogram(b, bins=edges, density=True)
    return float(np.sum(np.minimum(pa, pb) * np.diff(edges))), edges


def shared_edges(a, b=None, bins: int = 60) -> np.ndarray:
    values = np.concatenate([np.ravel(a), np.ravel(b) if b is not None else []])
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def reference_energy_function(system: str) -> EnergyFunction:
    """energy_fn for --energy-system: `trajcast_dist.data.lammps_md.potential_energies(frames, system)`."""
    try:
        from trajcast_dist.data.lammps_md import potential_energies
    except ImportError as err:
        raise UserError(f"--energy-system {system}: the reference force field is unavailable ({err}); install "
                        "the md extra (pip install 'trajcast-dist[md]') or leave out --energy-system") from err
    return lambda frames: potential_energies(frames, system)
