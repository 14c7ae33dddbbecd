"""Streaming extxyz output: a frame's header line is written from whole-system scalars, then its atom lines a
block at a time in global-id order, so the writer never holds more than one block.

The text follows ASE's extxyz writer for `state_to_atoms(state, T)` (same Properties, column formats,
Lattice and info encoding — ASE's own `key_val_dict_to_str`), so `ase.io.read` gives the same values as for
a frame ASE wrote: momenta = ASE masses × v / (Å/fs per ASE unit), positions and momenta at 8 decimals.
"""

import numpy as np
from ase.data import atomic_masses, chemical_symbols
from ase.io.extxyz import key_val_dict_to_str

from trajcast_dist import units

__all__ = ["ExtxyzFrameWriter", "frame_comment"]

_PROPERTIES = "species:S:1:pos:R:3:momenta:R:3:image:I:3"
_ROW = "%-2s" + " %16.8f" * 6 + " %8d" * 3 + "\n"  # ASE's formats for str, float and int columns
_LINES_PER_WRITE = 16384  # format a big block (a serial state) in slices, not as one huge string


def frame_comment(header: dict, temperature_K: float | None = None) -> str:
    """The comment line ASE writes for `state_to_atoms(state, temperature_K)`."""
    cell = np.asarray(header["cell"], dtype=np.float64)
    info = {"step": int(header["step"]), "time_fs": float(header["time_fs"])}
    if temperature_K is not None:
        info["temperature_K"] = float(temperature_K)
    info["pbc"] = np.asarray(header["pbc"], dtype=bool)
    lattice = "Lattice=\"" + " ".join(str(x) for x in np.reshape(cell.T, 9, order="F")) + "\" "
    return f"{lattice if cell.any() else ''}Properties={_PROPERTIES} {key_val_dict_to_str(info)}"


class ExtxyzFrameWriter:
    """Appends frames to an extxyz file: `begin(header, T)`, `add(block)` for ids 0..N−1 in order, `finish()`
    (flushes, so a killed run keeps every finished frame)."""

    def __init__(self, path, append: bool = False):
        self.path = path
        self._handle = open(path, "a" if append else "w")
        self._expected = self._written = 0

    def tell(self) -> int:
        """Byte offset where the next frame will begin."""
        return self._handle.tell()

    def begin(self, header: dict, temperature_K: float | None = None) -> "ExtxyzFrameWriter":
        self._expected, self._written = int(header["n_atoms"]), 0
        self._handle.write(f"{self._expected}\n{frame_comment(header, temperature_K)}\n")
        return self

    def add(self, block) -> None:
        """Atom lines of `block` (ids must continue where the previous block stopped)."""
        ids = np.asarray(block.ids)
        if len(ids) and (ids[0] != self._written or ids[-1] != self._written + len(ids) - 1):
            raise RuntimeError(f"frame rows out of order: ids {ids[0]}..{ids[-1]} after {self._written} atoms")
        for start in range(0, len(ids), _LINES_PER_WRITE):
            part = slice(start, start + _LINES_PER_WRITE)
            self._handle.write(_lines(block.numbers[part], block.positions[part], block.velocities[part],
                                      block.image[part]))
        self._written += len(ids)

    def finish(self) -> None:
        if self._written != self._expected:
            raise RuntimeError(f"frame has {self._written} atom lines, header says {self._expected}")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _lines(numbers, positions, velocities, image) -> str:
    numbers = np.asarray(numbers, dtype=np.int64)
    # exactly `Atoms.set_velocities`: momenta = masses[:, None] * (v in ASE units)
    momenta = atomic_masses[numbers][:, np.newaxis] * units.velocities_to_ase(velocities)
    symbols = [chemical_symbols[z] for z in numbers.tolist()]
    rows = zip(symbols, np.asarray(positions, dtype=np.float64).tolist(), momenta.tolist(),
               np.asarray(image, dtype=np.int64).tolist())
    return "".join(_ROW % (s, *r, *p, *i) for s, r, p, i in rows)
