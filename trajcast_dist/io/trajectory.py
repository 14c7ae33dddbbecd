"""A state as `ase.Atoms`: positions (wrapped), velocities, periodic images, step, time and T."""

import ase

from trajcast_dist import units
from trajcast_dist.dynamics.state import SystemState

__all__ = ["state_to_atoms"]


def state_to_atoms(state: SystemState, temperature_K: float | None = None) -> ase.Atoms:
    atoms = ase.Atoms(numbers=state.numbers, positions=state.positions, cell=state.cell, pbc=state.pbc)
    atoms.set_velocities(units.velocities_to_ase(state.velocities))
    atoms.arrays["image"] = state.image.copy()
    atoms.info["step"] = int(state.step)
    atoms.info["time_fs"] = float(state.time_fs)
    if temperature_K is not None:
        atoms.info["temperature_K"] = float(temperature_K)
    return atoms
