"""Instantaneous temperature and its canonical fluctuations (paper Methods eq. 7; SI B.1 eq. 1).

    T = 2K / (N_f k_B),  N_f = 3N − 3 (periodic: total momentum fixed) or 3N − 6 (isolated molecule: total
    momentum and angular momentum fixed; a linear molecule would have 3N − 5, not treated here).

In the canonical ensemble K follows a Gamma(N_f/2, k_B T0) distribution, so σ_T = √(2/N_f)·T0. SI B.1 writes
√(2/(3N))·T0, the same law with N_f ≈ 3N; we use the exact N_f, which matters for small molecules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajcast_dist import units

__all__ = ["TemperatureResult", "degrees_of_freedom", "instantaneous_temperature", "canonical_sigma_K",
           "temperature_statistics"]


@dataclass
class TemperatureResult:
    """Trace T(t) and its statistics; T0 is the target (user) or, without one, the mean."""
    time_fs: np.ndarray
    temperature_K: np.ndarray
    mean_K: float
    sigma_K: float
    t0_K: float
    sigma_canonical_K: float
    n_dof: int


def degrees_of_freedom(n_atoms: int, periodic: bool) -> int:
    return 3 * n_atoms - (3 if periodic else 6)


def instantaneous_temperature(velocities_A_per_fs, masses_amu, n_dof: int) -> float:
    return units.temperature_k(units.kinetic_energy_ev(masses_amu, velocities_A_per_fs), n_dof)


def canonical_sigma_K(t0_K: float, n_dof: int) -> float:
    """σ_T = √(2/N_f)·T0 (SI B.1 eq. 1 with N_f in place of 3N)."""
    return float(np.sqrt(2.0 / n_dof) * t0_K)


def temperature_statistics(time_fs, temperature_K, n_dof: int, t0_K: float | None = None) -> TemperatureResult:
    temperature_K = np.asarray(temperature_K, dtype=float)
    mean = float(temperature_K.mean())
    t0 = mean if t0_K is None else float(t0_K)
    return TemperatureResult(np.asarray(time_fs, dtype=float), temperature_K, mean,
                             float(temperature_K.std(ddof=1)) if temperature_K.size > 1 else 0.0,
                             t0, canonical_sigma_K(t0, n_dof), n_dof)
