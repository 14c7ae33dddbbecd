"""Initial velocities: Maxwell–Boltzmann at T with zero net momentum (and angular momentum for molecules),
scaled to exactly T like LAMMPS `velocity create` (paper "Trajectory Forecasting")."""

import numpy as np

from trajcast_dist import units
from trajcast_dist.dynamics.thermostat import degrees_of_freedom

__all__ = ["maxwell_boltzmann", "remove_net_momentum", "remove_angular_momentum"]


def maxwell_boltzmann(masses, temperature_K: float, rng: np.random.Generator, periodic: bool = True,
                      positions=None) -> np.ndarray:
    masses = np.asarray(masses, dtype=np.float64)
    sigma = np.sqrt(units.KB_EV_PER_K * temperature_K / (masses * units.AMU_A2_PER_FS2_IN_EV))
    velocities = rng.standard_normal((masses.size, 3)) * sigma[:, None]
    velocities = remove_net_momentum(velocities, masses)
    if not periodic:
        velocities = remove_angular_momentum(velocities, masses, positions)
    n_dof = degrees_of_freedom(masses.size, periodic)
    current = units.temperature_k(units.kinetic_energy_ev(masses, velocities), n_dof)
    return velocities * np.sqrt(temperature_K / current) if current > 0 else velocities


def remove_net_momentum(velocities, masses) -> np.ndarray:
    masses = np.asarray(masses, dtype=np.float64)
    return velocities - (masses[:, None] * velocities).sum(0) / masses.sum()


def remove_angular_momentum(velocities, masses, positions) -> np.ndarray:
    """Subtract the rigid rotation ω × (r − r_com) with I ω = L."""
    masses = np.asarray(masses, dtype=np.float64)
    rel = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    angular = (masses[:, None] * np.cross(rel, velocities)).sum(0)
    inertia = np.einsum("n,nij->ij", masses, (rel * rel).sum(1)[:, None, None] * np.eye(3)
                        - rel[:, :, None] * rel[:, None, :])
    omega = np.linalg.lstsq(inertia, angular, rcond=None)[0]
    return velocities - np.cross(omega, rel)
