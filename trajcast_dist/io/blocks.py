"""Per-atom data in chunks of consecutive global ids, so readers and writers can stream a system that no process
holds whole: an `AtomBlock` is a run of atoms, a frame header (dict) the whole-system scalars.

A frame header is a dict with n_atoms, cell (3×3 Å), pbc (3,), step and time_fs. Anything with the five
per-atom attributes of `AtomBlock` (a `SystemState`, the distributed driver's `LocalAtoms`) is a block too."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["AtomBlock", "CHUNK_ATOMS", "frame_header", "state_blocks"]

# Atoms per chunk when streaming input and output: 1.4 MB of packed float64 rows, ~7 MB of split text lines
# while reading (Python objects, ~400 B/atom); a few dozen messages for 10⁶ atoms.
CHUNK_ATOMS = 16384


@dataclass
class AtomBlock:
    positions: np.ndarray  # (n, 3) Å
    velocities: np.ndarray  # (n, 3) Å/fs
    numbers: np.ndarray  # (n,) atomic numbers
    image: np.ndarray  # (n, 3) periodic image counts
    ids: np.ndarray  # (n,) global ids

    def __len__(self) -> int:
        return len(self.ids)


def frame_header(state) -> dict:
    """The whole-system scalars of a `SystemState`."""
    return {"n_atoms": state.n_atoms, "cell": state.cell.copy(), "pbc": state.pbc.copy(), "step": state.step,
            "time_fs": state.time_fs}


def state_blocks(state, chunk: int = CHUNK_ATOMS) -> Iterator[AtomBlock]:
    """Consecutive row slices (views) of a state that is held whole anyway (serial runs, the ASE fallback)."""
    for start in range(0, state.n_atoms, chunk):
        part = slice(start, start + chunk)
        yield AtomBlock(positions=state.positions[part], velocities=state.velocities[part],
                        numbers=state.numbers[part], image=state.image[part], ids=state.ids[part])
