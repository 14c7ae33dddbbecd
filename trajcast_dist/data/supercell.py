"""Supercells of a structure, streamed to extxyz replica by replica (how `big_water.xyz` is made).

Memory stays at one replica plus the input structure whatever the size of the output: the header is written
first, then each replica's lines. Atom order is replica-major (all atoms of replica (0,0,0), then (0,0,1), ...)
as in `ase.Atoms.repeat`, so molecules stay whole. Velocities are carried along; `time_fs`/`step` of the input
are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trajcast_dist.errors import UserError
from trajcast_dist.io.atomic import atomic_path, check_writable
from trajcast_dist.io.structure import read_structure

__all__ = ["write_supercell"]


def write_supercell(structure, repeat, out, *, overwrite: bool = False, index: int = -1) -> Path:
    """Write `structure` (frame `index` of any ASE-readable file) repeated `repeat` = (a, b, c) times to `out`."""
    structure, out = Path(structure), Path(out)
    repeat = tuple(int(r) for r in repeat)
    if len(repeat) != 3 or min(repeat) < 1:
        raise UserError(f"--repeat {' '.join(map(str, repeat))}: give three positive integers a b c")
    check_writable(out, overwrite)
    atoms = read_structure(structure, index)
    cell = np.asarray(atoms.cell)
    if np.linalg.matrix_rank(cell) < 3:
        raise UserError(f"{structure}: needs a full 3-D cell to be repeated")
    has_velocities = atoms.has("momenta")
    # ASE's extxyz stores velocities as momenta; copying them keeps the exact values.
    momenta = atoms.get_momenta() if has_velocities else None

    with atomic_path(out) as tmp, open(tmp, "w") as handle:
        handle.write(f"{len(atoms) * int(np.prod(repeat))}\n{_comment(atoms, cell, repeat, has_velocities)}\n")
        symbols = atoms.get_chemical_symbols()
        row = "%-2s" + " %16.10f" * (6 if has_velocities else 3) + "\n"
        for shift in np.ndindex(*repeat):
            positions = atoms.positions + np.asarray(shift) @ cell
            values = np.hstack([positions, momenta]) if has_velocities else positions
            handle.write("".join(row % (s, *v) for s, v in zip(symbols, values.tolist())))
    return out


def _comment(atoms, cell, repeat, has_velocities: bool) -> str:
    lattice = " ".join(f"{x:.10f}" for x in (cell * np.asarray(repeat)[:, None]).ravel())
    properties = "species:S:1:pos:R:3" + (":momenta:R:3" if has_velocities else "")
    pbc = " ".join("T" if p else "F" for p in atoms.pbc)
    extra = "".join(f" {key}={atoms.info[key]}" for key in ("time_fs", "step") if key in atoms.info)
    return f'Lattice="{lattice}" Properties={properties}{extra} pbc="{pbc}"'
