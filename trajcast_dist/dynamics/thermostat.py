"""Canonical sampling through velocity rescaling (Bussi, Donadio & Parrinello 2007; paper "Ensembles and
Thermostats"), as in LAMMPS fix temp/csvr: K̂ is drawn from the canonical kinetic-energy distribution
relaxed with time constant τ, and every velocity is scaled by α = √(K̂/K).

The only global quantities are K and the random draw: K is summed with the reducer and the draw is made on
rank 0 and broadcast, so P ranks apply the same α to the whole system.
"""

import math

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.errors import UserError
from trajcast_dist.reduce import Reducer

__all__ = ["CSVR", "degrees_of_freedom", "add_element_sums", "element_temperatures", "kinetic_energy"]


def degrees_of_freedom(n_atoms: int, periodic) -> int:
    """N_f = 3N − 3 with any periodic direction, 3N − 6 for an isolated molecule (at least 1); `periodic` is one
    flag or one per axis (pbc)."""
    # the conservation step fixes the total momentum always and the angular momentum only without periodicity
    return max(3 * n_atoms - (3 if np.any(periodic) else 6), 1)


def add_element_sums(sums: dict, numbers, masses_amu, velocities_A_per_fs) -> dict:
    """Add atoms (numpy arrays, any subset of the system) to `sums`, Z → [kinetic energy eV, atoms, mass amu];
    returns `sums`. Blocks of one system may be added one after another."""
    numbers = np.asarray(numbers)
    for z in np.unique(numbers):
        mine = numbers == z
        entry = sums.setdefault(int(z), [0.0, 0, 0.0])
        entry[0] += units.kinetic_energy_ev(masses_amu[mine], velocities_A_per_fs[mine])
        entry[1] += int(mine.sum())
        entry[2] += float(masses_amu[mine].sum())
    return sums


def element_temperatures(sums: dict, n_dof: int) -> dict[str, float]:
    """Kinetic temperature of each element (symbol → K) from the `add_element_sums` of the whole system.

    Element s holds f_s = 3N_s − (3N − N_f)·M_s/M of the N_f degrees of freedom: the constrained total momentum
    is a uniform velocity whose kinetic energy the elements carry in proportion to their mass (exact for 3N − 3;
    for 3N − 6 the rotations are shared by mass too, an approximation). Σ f_s = N_f, so the f_s-weighted mean of
    the element temperatures is T."""
    from ase.data import chemical_symbols

    n_atoms = sum(count for _, count, _ in sums.values())
    total_mass = sum(mass for _, _, mass in sums.values())
    return {chemical_symbols[z]: units.temperature_k(kinetic, 3.0 * count - (3 * n_atoms - n_dof) * mass / total_mass)
            for z, (kinetic, count, mass) in sorted(sums.items())}


def kinetic_energy(velocities: torch.Tensor, masses: torch.Tensor, reducer: Reducer) -> float:
    """Global K = ½ Σ m v² in eV (paper eq. 7)."""
    local = 0.5 * units.AMU_A2_PER_FS2_IN_EV * (masses.unsqueeze(-1) * velocities.square()).sum()
    return float(reducer.sum(local.reshape(1).to(torch.float64))[0])


class CSVR:
    def __init__(self, temperature_K: float, tau_fs: float, dt_fs: float, n_dof: int):
        if temperature_K <= 0 or tau_fs <= 0 or dt_fs <= 0:
            raise UserError(f"thermostat needs T > 0, τ > 0 and Δt > 0 (got T={temperature_K} K, "
                            f"τ={tau_fs} fs, Δt={dt_fs} fs)")
        if n_dof < 1:
            raise UserError(f"thermostat needs at least one degree of freedom (got {n_dof})")
        self.temperature_K, self.tau_fs, self.dt_fs, self.n_dof = temperature_K, tau_fs, dt_fs, n_dof
        self.target_kinetic = 0.5 * n_dof * units.KB_EV_PER_K * temperature_K
        self.c = math.exp(-dt_fs / tau_fs)

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """The two random numbers of one step: a standard normal and a χ² with N_f − 1 degrees of freedom."""
        r1 = rng.standard_normal()
        r2 = rng.chisquare(self.n_dof - 1) if self.n_dof > 1 else 0.0
        return float(r1), float(r2)

    def scale_factor(self, kinetic: float, r1: float, r2: float) -> float:
        """α such that α²K is the CSVR update of K (Bussi 2007 eq. A7, LAMMPS resamplekin)."""
        if kinetic <= 0.0:  # all atoms at rest: no direction to scale along
            return 1.0
        c1 = self.c
        c2 = (1.0 - c1) * self.target_kinetic / kinetic / self.n_dof
        alpha2 = c1 + c2 * (r1 * r1 + r2) + 2.0 * r1 * math.sqrt(c1 * c2)
        return math.sqrt(alpha2)

    def apply(self, velocities: torch.Tensor, masses: torch.Tensor, reducer: Reducer,
              rng: np.random.Generator) -> torch.Tensor:
        kinetic = kinetic_energy(velocities, masses, reducer)
        draws = reducer.broadcast(torch.tensor(self.draw(rng), dtype=torch.float64))
        return velocities * self.scale_factor(kinetic, float(draws[0]), float(draws[1]))
