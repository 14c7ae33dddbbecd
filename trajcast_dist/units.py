"""Units used everywhere in trajcast-dist: Å, fs, amu, K, eV (the only place conversions live)."""

import numpy as np
from ase import units as _ase_units
from ase.data import atomic_masses

__all__ = ["KB_EV_PER_K", "AMU_A2_PER_FS2_IN_EV", "masses_amu", "kinetic_energy_ev",
           "temperature_k", "mb_vrms_A_per_fs", "ASE_VELOCITY_TO_A_PER_FS",
           "velocities_to_ase", "velocities_from_ase", "LAMMPS_UNITS", "ns_per_day"]

_AMU_KG = 1.66053906660e-27
_EV_J = 1.602176634e-19
_AVOGADRO = 6.02214076e23
KB_EV_PER_K = 8.617333262e-5
# 1 amu·Å²/fs² expressed in eV (≈ 103.6427).
AMU_A2_PER_FS2_IN_EV = _AMU_KG * 1e-20 / 1e-30 / _EV_J
# ASE stores velocities in Å/(ASE time unit); multiply by this to get Å/fs.
ASE_VELOCITY_TO_A_PER_FS = float(_ase_units.fs)
# Per LAMMPS unit style: (energy unit in eV, velocity unit in Å/fs, femtoseconds per time unit).
# real: kcal/mol, Å/fs, fs; metal: eV, Å/ps, ps.
LAMMPS_UNITS = {"real": (4184.0 / _AVOGADRO / _EV_J, 1.0, 1.0), "metal": (1.0, 1e-3, 1e3)}


def masses_amu(atomic_numbers) -> np.ndarray:
    """Standard atomic masses (amu) for atomic numbers."""
    return atomic_masses[np.asarray(atomic_numbers, dtype=int)].astype(np.float64)


def kinetic_energy_ev(masses, velocities) -> float:
    """K = ½ Σ m v² (paper eq. 7) in eV, masses in amu, velocities in Å/fs."""
    return 0.5 * AMU_A2_PER_FS2_IN_EV * float(np.sum(np.asarray(masses)[:, None] * np.asarray(velocities) ** 2))


def temperature_k(kinetic_ev: float, n_dof: int) -> float:
    """T = 2K / (N_f k_B) (paper eq. 7)."""
    return 2.0 * kinetic_ev / (n_dof * KB_EV_PER_K)


def mb_vrms_A_per_fs(mass_amu: float, temperature: float) -> float:
    """Maxwell–Boltzmann root-mean-square speed √(3 k_B T / m) in Å/fs."""
    return float(np.sqrt(3.0 * KB_EV_PER_K * temperature / (mass_amu * AMU_A2_PER_FS2_IN_EV)))


def velocities_to_ase(v_A_per_fs):
    """Å/fs → ASE's internal velocity unit (what `Atoms.set_velocities` expects)."""
    return np.asarray(v_A_per_fs) / ASE_VELOCITY_TO_A_PER_FS


def velocities_from_ase(v_ase):
    """ASE's internal velocity unit (`Atoms.get_velocities()`) → Å/fs."""
    return np.asarray(v_ase) * ASE_VELOCITY_TO_A_PER_FS


def ns_per_day(dt_fs: float, seconds_per_step: float) -> float:
    """Simulated nanoseconds per wall-clock day at `seconds_per_step` per step of `dt_fs`."""
    return dt_fs * 1e-6 * 86400.0 / seconds_per_step
