"""Reading an input structure (any ASE format) into a forecast state, with checks that name the problem."""


import ase.io
import numpy as np

from trajcast_dist import units
from trajcast_dist.dynamics.state import SystemState
from trajcast_dist.errors import UserError, read_user_file

__all__ = ["read_structure", "state_from_atoms", "has_velocities", "velocities_A_per_fs"]


def read_structure(path, index=-1, what: str = "structure"):
    """`ase.io.read` with one-line errors naming the file (a missing file, a format ASE cannot read)."""
    return read_user_file(path, f"{what} file", lambda p: ase.io.read(p, index=index),
                          "use a format ASE reads, e.g. extxyz")


def has_velocities(atoms) -> bool:
    """ASE returns zeros from `get_velocities()` when a file has no momenta column; look at the columns."""
    return "momenta" in atoms.arrays or "velocities" in atoms.arrays


def velocities_A_per_fs(atoms) -> np.ndarray:
    """Velocities in Å/fs from ASE's momenta, or from a 'velocities' column (extxyz written by other tools: in
    ASE's unit as well); zeros if the structure has neither."""
    if "momenta" in atoms.arrays:
        return units.velocities_from_ase(atoms.get_velocities())
    if "velocities" in atoms.arrays:
        return units.velocities_from_ase(atoms.arrays["velocities"])
    return np.zeros((len(atoms), 3))


def state_from_atoms(atoms, where: str = "structure") -> SystemState:
    """Positions, velocities (Å/fs; zero if absent — the caller draws Maxwell–Boltzmann), cell and pbc."""
    if len(atoms) == 0:
        raise UserError(f"{where} contains no atoms")
    positions = atoms.get_positions()
    if not np.isfinite(positions).all():
        raise UserError(f"{where} has NaN/inf positions; fix the file")
    velocities = velocities_A_per_fs(atoms)
    if not np.isfinite(velocities).all():
        raise UserError(f"{where} has NaN/inf velocities; fix the file")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-9:
        raise UserError(f"{where} is periodic (pbc={pbc.tolist()}) but has no cell; set Lattice=... or pbc=False")
    image = atoms.arrays.get("image")
    return SystemState(positions=positions, velocities=velocities, numbers=atoms.numbers, cell=cell, pbc=pbc,
                       image=None if image is None else np.asarray(image),
                       step=int(atoms.info.get("step", 0)), time_fs=float(atoms.info.get("time_fs", 0.0)))
