"""Read an MD trajectory (any ASE-readable format with velocities) into checked arrays in our units.

The pair builder (paper Methods, "Training"; DESIGN §6) needs, per trajectory, frames with the same atoms in
the same order, velocities, and evenly spaced, increasing times. Time comes from `atoms.info["time_fs"]`
(what `trajcast-dist data md` writes) or, for formats that do not store it (LAMMPS text dumps, ASE .traj),
from a frame spacing given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trajcast_dist import units
from trajcast_dist.errors import UserError
from trajcast_dist.io.structure import read_structure

__all__ = ["Trajectory", "read_trajectory", "frame_spacing_fs"]


@dataclass
class Trajectory:
    """Frames of one trajectory: positions/velocities (frames × atoms × 3, Å and Å/fs), cell (frames × 3 × 3)."""

    path: Path
    positions: np.ndarray
    velocities: np.ndarray
    species: np.ndarray  # atoms, atomic numbers
    cell: np.ndarray
    pbc: np.ndarray  # 3 bools
    time_fs: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.time_fs)

    @property
    def n_atoms(self) -> int:
        return len(self.species)


def read_trajectory(path, frame_fs: float | None = None, index: str = ":") -> Trajectory:
    """All frames of `path`, checked; raises UserError naming the file and frame on bad input."""
    path = Path(path)
    frames = read_structure(path, index, what="trajectory")
    if len(frames) < 2:
        raise UserError(f"{path}: has {len(frames)} frame(s); a trajectory of at least 2 frames is needed")
    first = frames[0]
    n = len(first)
    positions, velocities, cells, times = [], [], [], []
    for k, atoms in enumerate(frames):
        if len(atoms) != n:
            raise UserError(f"{path}: frame {k} has {len(atoms)} atoms but frame 0 has {n}; "
                            "every frame of a trajectory must hold the same atoms")
        if not np.array_equal(atoms.numbers, first.numbers):
            raise UserError(f"{path}: frame {k} lists the species in a different order from frame 0; "
                            "atoms must keep their order through the trajectory")
        if not np.array_equal(atoms.pbc, first.pbc):
            raise UserError(f"{path}: frame {k} changes the periodic boundary flags")
        if not (atoms.has("momenta") or atoms.has("velocities")):
            raise UserError(f"{path}: frame {k} has no velocities; write trajectories with velocities "
                            "(extxyz 'momenta' column, LAMMPS dump vx vy vz)")
        positions.append(atoms.positions)
        velocities.append(units.velocities_from_ase(atoms.get_velocities()))
        cells.append(np.asarray(atoms.cell))
        times.append(atoms.info.get("time_fs"))
    time_fs = _times(path, times, frame_fs)
    return Trajectory(path=path, positions=np.asarray(positions, dtype=np.float64),
                      velocities=np.asarray(velocities, dtype=np.float64), species=first.numbers.copy(),
                      cell=np.asarray(cells, dtype=np.float64), pbc=np.asarray(first.pbc, dtype=bool),
                      time_fs=time_fs)


def frame_spacing_fs(trajectory: Trajectory) -> float:
    return float(trajectory.time_fs[1] - trajectory.time_fs[0])


def _times(path: Path, times, frame_fs: float | None) -> np.ndarray:
    if all(t is not None for t in times):
        time_fs = np.asarray(times, dtype=np.float64)
    elif frame_fs is not None:
        time_fs = np.arange(len(times)) * float(frame_fs)
    else:
        raise UserError(f"{path}: frames carry no time (info 'time_fs'); pass --frame-fs with the time between "
                        "frames")
    spacing = np.diff(time_fs)
    if np.any(spacing <= 0):
        k = int(np.argmax(spacing <= 0)) + 1
        raise UserError(f"{path}: time does not increase at frame {k} ({time_fs[k - 1]} -> {time_fs[k]} fs); "
                        "frames must be in time order without repeats")
    if not np.allclose(spacing, spacing[0], rtol=1e-6, atol=1e-6):
        k = int(np.argmax(~np.isclose(spacing, spacing[0], rtol=1e-6, atol=1e-6))) + 1
        raise UserError(f"{path}: frame spacing changes at frame {k} ({spacing[k - 1]} fs instead of "
                        f"{spacing[0]} fs); pairs need evenly spaced frames")
    return time_fs
