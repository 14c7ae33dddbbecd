"""Thermostats applied after each model step.

CSVR, canonical sampling through velocity rescaling (Bussi, Donadio & Parrinello 2007; paper "Ensembles and
Thermostats"), as in LAMMPS fix temp/csvr: K̂ is drawn from the canonical kinetic-energy distribution relaxed
with time constant τ, and every velocity is scaled by α = √(K̂/K). The only global quantities are K and the
random draw: K is summed with the reducer and the draw is made on rank 0 and broadcast, so P ranks apply the
same α to the whole system.

Langevin, per atom (the Ornstein–Uhlenbeck part of BAOAB, as LAMMPS fix langevin with `zero yes`): a global
thermostat cannot move energy between kinds of motion, so a model that leaks energy from molecular translation
into vibrations keeps a hot H and a cold O under CSVR; a local one holds every atom at T.
"""

import math

import numpy as np
import torch

from trajcast_dist import units
from trajcast_dist.errors import UserError
from trajcast_dist.reduce import Reducer

__all__ = ["CSVR", "Langevin", "THERMOSTATS", "degrees_of_freedom", "add_element_sums", "element_temperatures",
           "kinetic_energy", "mass_weighted_mean"]


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
        _check(temperature_K, tau_fs, dt_fs)
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

    def apply(self, velocities: torch.Tensor, masses: torch.Tensor, reducer: Reducer, rng: np.random.Generator,
              ids: np.ndarray, step: int) -> torch.Tensor:
        kinetic = kinetic_energy(velocities, masses, reducer)
        draws = reducer.broadcast(torch.tensor(self.draw(rng), dtype=torch.float64))
        return velocities * self.scale_factor(kinetic, float(draws[0]), float(draws[1]))


class Langevin:
    """v ← c·v + √((1 − c²) k_B T / m)·ξ with c = e^(−Δt/τ), once per model step, then the net momentum the noise
    added is removed (the conservation layer keeps it zero). Applying the split form (Δt/2 before and after each
    model step) gives the same chain of states: two half steps compose to one full step in distribution.

    ξ is a counter-based hash of (seed, step, atom id), not a random stream, so P ranks give the trajectory of one
    process and a restart continues it exactly with no generator state to carry."""

    def __init__(self, temperature_K: float, tau_fs: float, dt_fs: float, seed: int):
        _check(temperature_K, tau_fs, dt_fs)
        self.temperature_K, self.tau_fs, self.seed = temperature_K, tau_fs, seed
        self.c = math.exp(-dt_fs / tau_fs)

    def apply(self, velocities: torch.Tensor, masses: torch.Tensor, reducer: Reducer, rng: np.random.Generator,
              ids: np.ndarray, step: int) -> torch.Tensor:
        variance = units.KB_EV_PER_K * self.temperature_K / (masses * units.AMU_A2_PER_FS2_IN_EV)
        noise = torch.as_tensor(hashed_normals(self.seed, step, ids), dtype=velocities.dtype,
                                device=velocities.device)
        kick = (self.c - 1.0) * velocities + torch.sqrt((1.0 - self.c ** 2) * variance).unsqueeze(-1) * noise
        return velocities + kick - mass_weighted_mean(kick, masses, reducer)


def mass_weighted_mean(x: torch.Tensor, masses: torch.Tensor, reducer: Reducer) -> torch.Tensor:
    """Σ m x / Σ m of `x` (n, 3) over all ranks, in x's dtype: what a random kick must lose to leave the centre
    of mass and the total momentum as the conservation layer set them."""
    sums = torch.cat([(masses.unsqueeze(-1) * x).sum(0), masses.sum().reshape(1)]).to(torch.float64)
    totals = reducer.sum(sums)
    return (totals[:3] / totals[3]).to(x.dtype)


THERMOSTATS = ("csvr", "langevin")


def _check(temperature_K: float, tau_fs: float, dt_fs: float) -> None:
    if temperature_K <= 0 or tau_fs <= 0 or dt_fs <= 0:
        raise UserError(f"thermostat needs T > 0, τ > 0 and Δt > 0 (got T={temperature_K} K, "
                        f"τ={tau_fs} fs, Δt={dt_fs} fs)")


_GOLDEN, _MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def hashed_normals(seed: int, step: int, ids: np.ndarray, stream: int = 0) -> np.ndarray:
    """(n, 3) standard normals that depend only on (seed, step, id): Box–Muller on SplitMix64 hashes. Each
    `stream` (< 256) is an independent set of draws (the thermostat's and the position noise's)."""
    key = _splitmix64(_splitmix64(np.array([seed], dtype=np.uint64)) ^ np.uint64(step))
    counters = np.asarray(ids, dtype=np.uint64)[:, None] * np.uint64(6) + np.arange(6, dtype=np.uint64)
    counters = counters ^ (np.uint64(stream) << np.uint64(56))
    bits = _splitmix64(counters ^ key) >> np.uint64(11)  # 53 random bits
    uniform = (bits.astype(np.float64) + 1.0) * 2.0 ** -53  # (0, 1]: the log below stays finite
    return np.sqrt(-2.0 * np.log(uniform[:, :3])) * np.cos(2.0 * np.pi * uniform[:, 3:])
