"""Trajectory output: extxyz frames with positions (wrapped), velocities, periodic images, step, time and T."""

import ase
import ase.io

from trajcast_dist import units
from trajcast_dist.dynamics.state import SystemState

__all__ = ["state_to_atoms", "ExtxyzWriter"]


def state_to_atoms(state: SystemState, temperature_K: float | None = None) -> ase.Atoms:
    atoms = ase.Atoms(numbers=state.numbers, positions=state.positions, cell=state.cell, pbc=state.pbc)
    atoms.set_velocities(units.velocities_to_ase(state.velocities))
    atoms.arrays["image"] = state.image.copy()
    atoms.info["step"] = int(state.step)
    atoms.info["time_fs"] = float(state.time_fs)
    if temperature_K is not None:
        atoms.info["temperature_K"] = float(temperature_K)
    return atoms


class ExtxyzWriter:
    """Appends frames to an extxyz file and flushes each one (a killed run keeps the frames it wrote)."""

    def __init__(self, path, append: bool = False):
        self.path = path
        self._handle = open(path, "a" if append else "w")

    def write(self, atoms: ase.Atoms) -> None:
        ase.io.write(self._handle, atoms, format="extxyz")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
