"""The state of a forecast: what a restart file holds and what every step updates."""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SystemState", "wrap_positions"]


@dataclass
class SystemState:
    positions: np.ndarray  # (N, 3) Å, wrapped into the cell along periodic directions
    velocities: np.ndarray  # (N, 3) Å/fs
    numbers: np.ndarray  # (N,) atomic numbers
    cell: np.ndarray  # (3, 3) Å, rows are cell vectors
    pbc: np.ndarray  # (3,) bool
    image: np.ndarray = None  # (N, 3) periodic image counts: unwrapped = positions + image @ cell
    ids: np.ndarray = None  # (N,) global atom ids: output order is input order
    step: int = 0
    time_fs: float = 0.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.numbers)
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float64)
        self.velocities = np.ascontiguousarray(self.velocities, dtype=np.float64)
        self.numbers = np.asarray(self.numbers, dtype=np.int64)
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        self.image = np.zeros((n, 3), dtype=np.int64) if self.image is None else np.asarray(self.image, np.int64)
        self.ids = np.arange(n, dtype=np.int64) if self.ids is None else np.asarray(self.ids, np.int64)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def periodic(self) -> bool:
        return bool(self.pbc.any())


def wrap_positions(positions: np.ndarray, image: np.ndarray, cell: np.ndarray, pbc: np.ndarray):
    """Wrap positions into the cell along periodic directions (fractional coordinates, any triclinic cell),
    counting the crossings in `image` so trajectories can be unwrapped."""
    if not pbc.any():
        return positions, image
    fractional = positions @ np.linalg.inv(cell)
    shift = np.floor(fractional).astype(np.int64) * pbc.astype(np.int64)
    return positions - shift @ cell, image + shift
