"""Instantaneous temperature and its canonical fluctuations (paper Methods eq. 7; SI B.1 eq. 1).

    T = 2K / (N_f k_B),  N_f = 3N − 3 (periodic: total momentum fixed) or 3N − 6 (isolated molecule: total
    momentum and angular momentum fixed; a linear molecule would have 3N − 5, not treated here).

Per element, T_s = 2K_s / (f_s k_B) with f_s = 3N_s − (3N − N_f)·M_s/M, its share of the degrees of freedom
(`dynamics.thermostat.element_temperatures`). Σ f_s = N_f, so the f_s-weighted mean of the T_s is T.
At equilibrium every T_s equals T (equipartition); a model that moves energy from one kind of motion to another
(e.g. into O–H vibrations, out of molecular translation) shows it here even while a global thermostat keeps T
right.

In the canonical ensemble K follows a Gamma(N_f/2, k_B T0) distribution, so σ_T = √(2/N_f)·T0. SI B.1 writes
√(2/(3N))·T0, the same law with N_f ≈ 3N; we use the exact N_f, which matters for small molecules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import add_element_sums, degrees_of_freedom, element_temperatures

__all__ = ["TemperatureResult", "degrees_of_freedom", "instantaneous_temperature", "species_temperatures",
           "canonical_sigma_K", "temperature_statistics", "equipartition_gap"]


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
    species_temperature_K: dict[str, np.ndarray] = field(default_factory=dict)  # element → T_s(t)
    species_mean_K: dict[str, float] = field(default_factory=dict)


def instantaneous_temperature(velocities_A_per_fs, masses_amu, n_dof: int) -> float:
    return units.temperature_k(units.kinetic_energy_ev(masses_amu, velocities_A_per_fs), n_dof)


def species_temperatures(velocities_A_per_fs, masses_amu, numbers, n_dof: int) -> dict[str, float]:
    """T_s of each element (module docstring): its kinetic energy over its share of the N_f degrees of freedom."""
    return element_temperatures(add_element_sums({}, numbers, np.asarray(masses_amu), velocities_A_per_fs), n_dof)


def canonical_sigma_K(t0_K: float, n_dof: int) -> float:
    """σ_T = √(2/N_f)·T0 (SI B.1 eq. 1 with N_f in place of 3N)."""
    return float(np.sqrt(2.0 / n_dof) * t0_K)


def temperature_statistics(time_fs, temperature_K, n_dof: int, t0_K: float | None = None,
                           species_temperature_K: dict | None = None) -> TemperatureResult:
    temperature_K = np.asarray(temperature_K, dtype=float)
    mean = float(temperature_K.mean())
    t0 = mean if t0_K is None else float(t0_K)
    species = {k: np.asarray(v, dtype=float) for k, v in (species_temperature_K or {}).items()}
    return TemperatureResult(np.asarray(time_fs, dtype=float), temperature_K, mean,
                             float(temperature_K.std(ddof=1)) if temperature_K.size > 1 else 0.0,
                             t0, canonical_sigma_K(t0, n_dof), n_dof, species,
                             {k: float(v.mean()) for k, v in species.items()})


def equipartition_gap(result: TemperatureResult) -> float:
    """Largest |T_s − T| / T over the elements (0 for one element); ≲ 0.02 for an equilibrated liquid."""
    return max((abs(t - result.mean_K) / result.mean_K for t in result.species_mean_K.values()), default=0.0)
